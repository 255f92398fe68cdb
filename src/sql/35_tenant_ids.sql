/* ------------------------------------------------------------------------
 * Ids of another account (issue 12)
 *
 * Conversation and message ids are the Graph API's and the inbox tables are
 * keyed on them alone, so a write for account A can meet a row that account
 * B already stores under the same id (a webhook misrouted by the app, two
 * tenants of one database fed the same fixture, a buggy proxy). The upserts
 * (store_conversations, store_messages) never change such a row; once they
 * have run, the readers below tell which ids are stored for another
 * account, and A's copies of those rows go to ig_identity.quarantine with
 * reason 'id_of_another_account' (once per distinct copy), with a WARNING
 * naming how many. Both stay: B's row where it was, A's copy in the
 * quarantine.
 * ------------------------------------------------------------------------ */

-- Readers (run as the table's owner, like every inbox read): which of
-- p_ids the table stores for an account other than p_ig_account_id.
CREATE FUNCTION ig_identity.read_foreign_conversation_ids(p_ig_account_id text, p_ids text[])
RETURNS text[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
-- plpgsql, not sql: Citus plans no SQL function's parameterised statement
-- on a distributed table
BEGIN
    RETURN (
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT c.id::text), '{}')
      FROM @extschema@.instagram_conversations c
     WHERE c.id::text = ANY (p_ids)
       AND c.ig_account_id::text IS DISTINCT FROM p_ig_account_id);
END
$$;

CREATE FUNCTION ig_identity.read_foreign_message_ids(p_ig_account_id text, p_ids text[])
RETURNS text[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
-- plpgsql, not sql: Citus plans no SQL function's parameterised statement
-- on a distributed table
BEGIN
    RETURN (
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT m.id::text), '{}')
      FROM @extschema@.instagram_messages m
     WHERE m.id::text = ANY (p_ids)
       AND m.ig_account_id::text IS DISTINCT FROM p_ig_account_id);
END
$$;

-- Stores the copies (as the extension owner: the quarantine is private);
-- a copy already set aside is not stored again. Returns how many.
CREATE FUNCTION ig_identity.set_aside_foreign_ids(p_table text, p_ig_account_id text, p_rows jsonb)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_label text := ig_identity.table_label(
        pg_catalog.format('%s.%I', '@extschema@', p_table)::pg_catalog.regclass);
    v_n bigint;
BEGIN
    INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
    SELECT DISTINCT v_label, 'id_of_another_account', r.row_data
      FROM pg_catalog.jsonb_array_elements(p_rows) AS r(row_data)
     WHERE NOT EXISTS (SELECT 1 FROM ig_identity.quarantine q
                        WHERE q.reason OPERATOR(pg_catalog.=) 'id_of_another_account'
                          AND q.source_table OPERATOR(pg_catalog.=) v_label
                          AND q.row_data OPERATOR(pg_catalog.=) r.row_data);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n > 0 THEN
        RAISE WARNING USING
            MESSAGE = pg_catalog.format('ig_identity kept %s of account %s out of %s: another account stores %s',
                                        v_n OPERATOR(pg_catalog.||) CASE WHEN v_n OPERATOR(pg_catalog.=) 1 THEN ' row' ELSE ' rows' END,
                                        p_ig_account_id, v_label,
                                        CASE WHEN v_n OPERATOR(pg_catalog.=) 1 THEN 'its id' ELSE 'their ids' END),
            DETAIL  = 'The other account''s rows are unchanged; these copies are in ig_identity.quarantine with reason id_of_another_account.',
            HINT    = 'Check which account the app routes these webhooks or syncs to: one conversation or message belongs to one account.';
    END IF;
    RETURN v_n;
END
$fn$;

CREATE FUNCTION ig_identity.set_aside_foreign_conversations(
    p_ig_account_id text, p_location_id text, p_ids text[], p_participants text[],
    p_updated timestamptz[], p_foreign text[])
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ig_identity.set_aside_foreign_ids('instagram_conversations', p_ig_account_id,
        COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
            'id', s.id, 'ig_account_id', p_ig_account_id, 'location_id', p_location_id,
            'participant_igsid', s.participant, 'updated_time', s.updated)), '[]'))
      FROM unnest(p_ids, p_participants, p_updated) AS s(id, participant, updated)
     WHERE s.id OPERATOR(pg_catalog.=) ANY (p_foreign) -- (unnest of several arrays: the FROM form, unqualified)
$$;

CREATE FUNCTION ig_identity.set_aside_foreign_messages(
    p_ig_account_id text, p_ids text[], p_conversation_ids text[], p_from text[], p_to text[],
    p_texts text[], p_created timestamptz[], p_echo boolean[], p_foreign text[])
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ig_identity.set_aside_foreign_ids('instagram_messages', p_ig_account_id,
        COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
            'id', s.id, 'conversation_id', s.conversation_id, 'ig_account_id', p_ig_account_id,
            'from_id', s.from_id, 'to_id', s.to_id, 'message', s.message,
            'created_at', s.created_at, 'is_echo', s.is_echo)), '[]'))
      FROM unnest(p_ids, p_conversation_ids, p_from, p_to, p_texts, p_created, p_echo)
           AS s(id, conversation_id, from_id, to_id, message, created_at, is_echo)
     WHERE s.id OPERATOR(pg_catalog.=) ANY (p_foreign) -- (unnest of several arrays: the FROM form, unqualified)
$$;
