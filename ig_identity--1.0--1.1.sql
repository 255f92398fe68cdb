/*
 * ig_identity--1.0--1.1.sql — updates an installed ig_identity 1.0 to 1.1.
 *
 * Every change to SQL objects between the two versions is written here as
 * well as in src/sql/ (which builds the full ig_identity--1.1.sql). The
 * upgrade test (test/t/014_upgrade.pl) installs 1.0, fills every table,
 * runs ALTER EXTENSION ig_identity UPDATE and compares the catalogs with a
 * fresh 1.1 install: the two must not differ.
 *
 * The sections below are one per change, in the order they were made.
 */

\echo Use "ALTER EXTENSION ig_identity UPDATE TO '1.1'" to load this file. \quit



-- ==== issue 11: release engineering ====
-- ==== end of issue 11 ====



-- ==== issue 12: security and integrity ====
-- ==== end of issue 12 ====



-- ==== issue 13: worker lifecycle ====
-- ==== end of issue 13 ====



-- ==== issue 14: the real Graph API ====
-- ==== end of issue 14 ====



-- ==== issue 15: many accounts ====
-- ==== end of issue 15 ====



-- ==== issue 16: a DBA's first hour ====
-- ==== end of issue 16 ====



-- ==== issue 18: real transport ====
-- ==== end of issue 18 ====
