/* ------------------------------------------------------------------------
 * A declaratively partitioned instagram_messages (issue 12)
 *
 * Messages partitioned by month are common. PostgreSQL cannot hold a unique
 * index on id alone across partitions (every unique index of a partitioned
 * table includes the partition key), so ON CONFLICT (id) has nothing to
 * infer from. For such a table the C code (inbox.cpp) calls this writer
 * instead of store_messages. Before it, as the extension's owner, the C code
 * locks the rows of ig_identity.message_id_locks that the batch's ids hash
 * to (lock_message_ids), in slot order; then the writer, each statement with
 * a fresh snapshot (a volatile SQL function), completes a known message's
 * conversation and inserts the ids not yet stored. Concurrent writers of one
 * id therefore wait for each other and the second sees the first's row (READ
 * COMMITTED, the default; under REPEATABLE READ the repair's unique index on
 * id and the partition key is what stops an exact duplicate). Same arguments
 * and result as store_messages; runs as the table's owner.
 *
 * The lock is a row lock on a private table, not an advisory lock: anyone
 * can take an advisory lock whose key they can compute (and read held keys
 * in pg_locks), so a role with no grant at all could stall every write of a
 * message id. Locking these rows needs UPDATE on ig_identity's table, which
 * only its owner (and superusers) have. 1024 slots: two ids that share one
 * only wait for each other's transaction.
 * ------------------------------------------------------------------------ */
CREATE TABLE ig_identity.message_id_locks (slot int PRIMARY KEY);
INSERT INTO ig_identity.message_id_locks (slot) SELECT pg_catalog.generate_series(0, 1023);

CREATE FUNCTION ig_identity.lock_message_ids(p_ids text[])
RETURNS bigint
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.count(*)
      FROM (SELECT l.slot
              FROM ig_identity.message_id_locks l
             WHERE l.slot OPERATOR(pg_catalog.=) ANY (ARRAY(
                       SELECT pg_catalog.hashtext(u.id) OPERATOR(pg_catalog.&) 1023
                         FROM pg_catalog.unnest(p_ids) AS u(id)
                        WHERE u.id IS NOT NULL))
             ORDER BY l.slot
               FOR UPDATE) AS s
$$;

CREATE FUNCTION ig_identity.store_messages_partitioned(
    p_ig_account_id text, p_ids text[], p_conversation_ids text[], p_from text[], p_to text[],
    p_texts text[], p_created timestamptz[], p_echo boolean[])
RETURNS bigint
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH rows AS (
        SELECT s.id,
               -- the C code filled the conversations in, reading
               -- instagram_conversations as its own owner (37_mixed_owners.sql)
               s.conversation_id AS conv
          FROM unnest(p_ids, p_conversation_ids, p_from, p_to, p_echo)
               AS s(id, conversation_id, from_id, to_id, is_echo)
    )
    UPDATE @extschema@.instagram_messages m
       SET conversation_id = r.conv
      FROM (SELECT DISTINCT ON (rows.id) rows.id, rows.conv FROM rows ORDER BY rows.id) AS r
     WHERE m.id = r.id AND m.conversation_id IS NULL AND r.conv IS NOT NULL
       AND m.ig_account_id = p_ig_account_id; -- never another account's row (35_tenant_ids.sql)

    WITH rows AS (
        SELECT s.*,
               -- the C code filled the conversations in, reading
               -- instagram_conversations as its own owner (37_mixed_owners.sql)
               s.conversation_id AS conv
          FROM unnest(p_ids, p_conversation_ids, p_from, p_to, p_texts, p_created, p_echo)
               AS s(id, conversation_id, from_id, to_id, message, created_at, is_echo)
    ), ins AS (
        INSERT INTO @extschema@.instagram_messages
               (id, conversation_id, ig_account_id, from_id, to_id, message, created_at, is_echo)
        SELECT DISTINCT ON (r.id) r.id, r.conv, p_ig_account_id, r.from_id, r.to_id, r.message,
               r.created_at, r.is_echo
          FROM rows r
         WHERE r.id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM @extschema@.instagram_messages m WHERE m.id = r.id)
         ORDER BY r.id
        RETURNING 1
    )
    SELECT pg_catalog.count(*) FROM ins
$$;
