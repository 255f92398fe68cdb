/* ------------------------------------------------------------------------
 * A declaratively partitioned instagram_messages (issue 12)
 *
 * Messages partitioned by month are common. PostgreSQL cannot hold a unique
 * index on id alone across partitions (every unique index of a partitioned
 * table includes the partition key), so ON CONFLICT (id) has nothing to
 * infer from. For such a table the C code (inbox.cpp) calls this writer
 * instead of store_messages: it takes a transaction-scoped advisory lock per
 * message id, in id order, then, each statement with a fresh snapshot (a
 * volatile SQL function), completes a known message's conversation and
 * inserts the ids not yet stored. Concurrent writers of one id therefore
 * wait for each other and the second sees the first's row (READ COMMITTED,
 * the default; under REPEATABLE READ the repair's unique index on id and
 * the partition key is what stops an exact duplicate). Same arguments and
 * result as store_messages; runs as the table's owner.
 * ------------------------------------------------------------------------ */
CREATE FUNCTION ig_identity.store_messages_partitioned(
    p_ig_account_id text, p_ids text[], p_conversation_ids text[], p_from text[], p_to text[],
    p_texts text[], p_created timestamptz[], p_echo boolean[])
RETURNS bigint
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.count(pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('ig_identity.instagram_messages'),
                                                             pg_catalog.hashtext(l.id)))
      FROM (SELECT DISTINCT u.id FROM unnest(p_ids) AS u(id) WHERE u.id IS NOT NULL ORDER BY u.id) AS l;

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
