/* ------------------------------------------------------------------------
 * Inbox tables with different owners (issue 12)
 *
 * Each inbox table is read and written as its own owner. A message stored
 * without its conversation id takes the account's newest conversation with
 * that participant: this reader finds it, as the owner of
 * instagram_conversations, and the C code (inbox.cpp) passes the filled
 * array to store_messages, which runs as the owner of instagram_messages
 * and reads no other table. Neither owner needs a grant on the other's
 * table, and the conversations owner's policies never run as the messages
 * owner.
 * ------------------------------------------------------------------------ */
CREATE FUNCTION ig_identity.read_message_conversations(p_ig_account_id text, p_conversation_ids text[],
                                                       p_from text[], p_to text[], p_echo boolean[])
RETURNS text[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
-- On Citus: plpgsql, not sql (Citus plans no SQL function's parameterised
-- statement on a distributed table), and the account's conversations with
-- these participants read in one statement on the account's shard, not in
-- a subquery per message (Citus runs no correlated subquery over unnest).
DECLARE
    v_wanted text[];
    v_participants text[];
    v_ids text[];
BEGIN
    SELECT pg_catalog.array_agg(DISTINCT CASE WHEN s.is_echo THEN s.to_id ELSE s.from_id END)
      INTO v_wanted
      FROM unnest(p_conversation_ids, p_from, p_to, p_echo) AS s(conversation_id, from_id, to_id, is_echo)
     WHERE s.conversation_id IS NULL;
    IF v_wanted IS NOT NULL THEN
        -- the newest conversation of each participant
        SELECT pg_catalog.array_agg(n.participant), pg_catalog.array_agg(n.id)
          INTO v_participants, v_ids
          FROM (SELECT DISTINCT ON (c.participant_igsid)
                       c.participant_igsid::text AS participant, c.id::text AS id
                  FROM @extschema@.instagram_conversations c
                 WHERE c.ig_account_id = p_ig_account_id
                   AND c.participant_igsid = ANY (v_wanted)
                 ORDER BY c.participant_igsid, c.updated_time DESC NULLS LAST) AS n;
    END IF;
    RETURN (
    SELECT COALESCE(pg_catalog.array_agg(
               COALESCE(s.conversation_id,
                        (SELECT k.id FROM unnest(v_participants, v_ids) AS k(participant, id)
                          WHERE k.participant = CASE WHEN s.is_echo THEN s.to_id ELSE s.from_id END))
               ORDER BY s.n), '{}')
      FROM unnest(p_conversation_ids, p_from, p_to, p_echo) WITH ORDINALITY
           AS s(conversation_id, from_id, to_id, is_echo, n));
END
$$;
