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
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(pg_catalog.array_agg(
               COALESCE(s.conversation_id,
                        (SELECT c.id::text FROM @extschema@.instagram_conversations c
                          WHERE c.ig_account_id = p_ig_account_id
                            AND c.participant_igsid = CASE WHEN s.is_echo THEN s.to_id ELSE s.from_id END
                          ORDER BY c.updated_time DESC NULLS LAST LIMIT 1))
               ORDER BY s.n), '{}')
      FROM unnest(p_conversation_ids, p_from, p_to, p_echo) WITH ORDINALITY
           AS s(conversation_id, from_id, to_id, is_echo, n)
$$;
