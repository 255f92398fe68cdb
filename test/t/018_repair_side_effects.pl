# 018_repair_side_effects.pl — review of issue 12 (first written as
# 030_review_repair_side_effects.pl, failing): the repair that
# runs as each inbox table's owner (ig_identity.as_owner) must not change
# what the installer's own transaction does, nor refuse a table owner that
# PostgreSQL 15's defaults leave without CREATE on the schema.
#
#  1. as_owner runs SET CONSTRAINTS ALL IMMEDIATE in the caller's
#     transaction (src/pg/sql_as_owner.cpp, set_constraints_immediate and
#     run_statement): a DEFERRABLE INITIALLY DEFERRED constraint of an
#     unrelated table, pending when CREATE EXTENSION (or ig_identity_repair())
#     runs, is checked there and then, and stays IMMEDIATE for the rest of
#     the transaction.
#     Worse, those pending triggers fire with the rights of whoever calls
#     as_owner: a DBA's SECURITY DEFINER wrapper that lets an operator role
#     run ig_identity_repair() fires the operator's own deferred trigger as
#     the superuser, and the operator makes itself a superuser.
#  2. Every repair statement runs as the owner, so CREATE UNIQUE INDEX / ADD
#     CONSTRAINT UNIQUE need that owner's CREATE on the schema (DefineIndex
#     checks it). An app role that owns its tables but not CREATE on public
#     (PostgreSQL 15's default) makes CREATE EXTENSION fail with a bare
#     "permission denied for schema public" that names no role or remedy.
#  3. store_messages_partitioned (src/sql/36_partitioned_inbox.sql) keys its
#     per-id lock on pg_advisory_xact_lock(hashtext('ig_identity.instagram_messages'),
#     hashtext(mid)), a key anyone can compute and take: a role with no grant
#     at all holds it and every ig_ingest_webhook (and ig_sync_inbox) of that
#     message waits for as long as it likes.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest qw(write_key_file);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('review_repair');
$node->init;
# tokens are stored sealed (issue 16): the partitioned case connects an account
$node->append_conf('postgresql.conf',
	"ig_identity.key_file = '" . write_key_file($node->basedir . '/ig_identity.key') . "'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE ROLE app');

# A legacy identity cache owned by the app; ig_identity repairs it.
sub legacy_db
{
	my ($db, $grant_create) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, q{
		CREATE TABLE public.instagram_user_cache (ig_account_id text, ig_user_id text, username text);
		INSERT INTO public.instagram_user_cache VALUES ('17841400000000001', '900001', 'jane');
		ALTER TABLE public.instagram_user_cache OWNER TO app;
		CREATE TABLE public.parent (id int PRIMARY KEY);
		CREATE TABLE public.child (pid int REFERENCES public.parent DEFERRABLE INITIALLY DEFERRED);
	});
	$node->safe_psql($db, 'GRANT CREATE ON SCHEMA public TO app') if $grant_create;
}

# --- 1. SET CONSTRAINTS side effect ----------------------------------------
legacy_db('deferred', 1);
my ($rc, $out, $err) = $node->psql('deferred', q{
	BEGIN;
	INSERT INTO public.child VALUES (1);   -- its parent comes later: INITIALLY DEFERRED
	CREATE EXTENSION ig_identity;
	INSERT INTO public.parent VALUES (1);
	COMMIT;
}, on_error_stop => 1);
is($rc, 0, 'CREATE EXTENSION leaves a pending INITIALLY DEFERRED constraint deferred')
  or diag($err);
$node->safe_psql('deferred', 'CREATE EXTENSION IF NOT EXISTS ig_identity');

($rc, $out, $err) = $node->psql('deferred', q{
	BEGIN;
	SELECT * FROM public.ig_identity_repair();
	INSERT INTO public.child VALUES (2);   -- after the repair: still deferred
	INSERT INTO public.parent VALUES (2);
	COMMIT;
}, on_error_stop => 1);
is($rc, 0, 'after ig_identity_repair() the transaction\'s constraints are still INITIALLY DEFERRED')
  or diag($err);

# 1b. the same through a SECURITY DEFINER wrapper: the operator's deferred
# trigger, queued by the operator, fires as the wrapper's owner
$node->safe_psql('deferred', q{
	CREATE ROLE ops LOGIN;
	GRANT CREATE ON SCHEMA public TO ops;
	CREATE FUNCTION public.repair_inbox() RETURNS void LANGUAGE sql SECURITY DEFINER
	    SET search_path = pg_catalog, pg_temp AS 'SELECT * FROM public.ig_identity_repair()';
	REVOKE ALL ON FUNCTION public.repair_inbox() FROM PUBLIC;
	GRANT EXECUTE ON FUNCTION public.repair_inbox() TO ops;
	SET ROLE ops;
	CREATE TABLE public.ops_t (x int);
	CREATE FUNCTION public.ops_trap() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	    EXECUTE 'ALTER ROLE ops SUPERUSER';
	    RETURN NULL;
	EXCEPTION WHEN insufficient_privilege THEN RETURN NULL;
	END $$;
	CREATE CONSTRAINT TRIGGER ops_trap AFTER INSERT ON public.ops_t
	    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.ops_trap();
});
$node->psql('deferred', q{
	SET ROLE ops;
	BEGIN;
	INSERT INTO public.ops_t VALUES (1);
	SELECT public.repair_inbox();
	COMMIT;
});
is($node->safe_psql('deferred', "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = 'ops'"), 'f',
	'a deferred trigger queued by the caller of a SECURITY DEFINER wrapper of ig_identity_repair() does not fire as its owner');

# 1c. the inbox table's own deferred constraint trigger fires inside the
# repair, as the owner; afterwards it is INITIALLY DEFERRED again, and an
# owner's trigger that defers another table's constraint and queues an event
# for it gets nothing to fire later as the installer (PostgreSQL refuses to
# queue it in the restricted operation, and the repair fails instead)
legacy_db('ownside', 1);
$node->safe_psql('ownside', q{
	CREATE TABLE public.fired (who name, what text);
	GRANT INSERT ON public.fired TO PUBLIC;
	CREATE FUNCTION public.note() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	    INSERT INTO public.fired VALUES (current_user, TG_TABLE_NAME);
	    RETURN NULL;
	END $$;
	CREATE CONSTRAINT TRIGGER note AFTER INSERT OR UPDATE OR DELETE ON public.instagram_user_cache
	    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.note();
	INSERT INTO public.instagram_user_cache VALUES (NULL, NULL, 'nobody');   -- quarantined by the repair
	DELETE FROM public.fired;
});
($rc, $out, $err) = $node->psql('ownside', q{
	BEGIN;
	INSERT INTO public.child VALUES (3);
	CREATE EXTENSION ig_identity;
	SELECT 'during:' || pg_catalog.string_agg(DISTINCT who, ',') FROM public.fired;
	INSERT INTO public.instagram_user_cache (ig_account_id, ig_user_id, username) VALUES ('17841400000000001', '900002', 'max');
	SELECT 'pending:' || pg_catalog.count(*) FROM public.fired WHERE who = current_user;
	INSERT INTO public.parent VALUES (3);
	COMMIT;
	SELECT 'after:' || pg_catalog.count(*) FROM public.fired WHERE who = current_user;
}, on_error_stop => 1);
is($rc, 0, 'CREATE EXTENSION with the inbox table\'s own deferred constraint trigger') or diag($err);
like($out, qr/^during:app$/m, 'the inbox table\'s deferred constraint trigger fired during the repair, as its owner');
like($out, qr/^pending:0$/m, 'after the repair that trigger is INITIALLY DEFERRED again: nothing fired before COMMIT');
like($out, qr/^after:1$/m, 'and it fired at COMMIT, as the one who committed');

$node->safe_psql('ownside', q{
	CREATE TABLE public.app_other (x int);
	ALTER TABLE public.app_other OWNER TO app;
	CREATE FUNCTION public.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	    EXECUTE 'ALTER ROLE app SUPERUSER';
	    RETURN NULL;
	EXCEPTION WHEN insufficient_privilege THEN RETURN NULL;
	END $$;
	CREATE CONSTRAINT TRIGGER escalate AFTER INSERT ON public.app_other
	    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.escalate();
	CREATE FUNCTION public.defer_other() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	    SET CONSTRAINTS ALL DEFERRED;
	    INSERT INTO public.app_other VALUES (1);
	    RETURN NULL;
	END $$;
	ALTER FUNCTION public.defer_other() OWNER TO app;
	ALTER FUNCTION public.escalate() OWNER TO app;
	CREATE TRIGGER defer_other AFTER UPDATE OR DELETE ON public.instagram_user_cache
	    FOR EACH ROW EXECUTE FUNCTION public.defer_other();
	-- the repair's profile_pic_url step updates this row
	INSERT INTO public.instagram_user_cache (ig_account_id, ig_user_id, username, profile_pic)
	    VALUES ('17841400000000001', '900003', 'zoe', 'https://cdn.example/zoe.jpg');
});
($rc, $out, $err) = $node->psql('ownside', 'SELECT * FROM public.ig_identity_repair()');
like($err, qr/cannot fire deferred trigger within security-restricted operation/,
	'PostgreSQL refuses to queue that event inside the owner section: the repair fails instead');
is($node->safe_psql('ownside', "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = 'app'"), 'f',
	'an event the owner\'s code queues for another deferred constraint never fires later as the installer');

# 1d. SET CONSTRAINTS names constraints by schema and name: an inbox table's
# deferrable constraint named like another table's (here the installer's
# pending foreign key) is refused, not set IMMEDIATE together with it
legacy_db('sharedname', 1);
$node->safe_psql('sharedname', q{
	CREATE FUNCTION public.nothing() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
	CREATE CONSTRAINT TRIGGER child_pid_fkey AFTER INSERT ON public.instagram_user_cache
	    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.nothing();
});
($rc, $out, $err) = $node->psql('sharedname', q{
	BEGIN;
	INSERT INTO public.child VALUES (4);
	CREATE EXTENSION ig_identity;
	COMMIT;
}, on_error_stop => 1);
like($err, qr/constraint public\.child_pid_fkey shares its name with a constraint of another table/,
	'a deferrable constraint sharing its name with another table\'s is refused by name');

# --- 2. the owner without CREATE on the schema -------------------------------
legacy_db('nocreate', 0);
($rc, $out, $err) = $node->psql('nocreate', 'CREATE EXTENSION ig_identity', on_error_stop => 1);
ok($rc == 0 || $err =~ /\bapp\b/,
	'CREATE EXTENSION either repairs a table whose owner lacks CREATE on public, or says which role needs what')
  or diag($err);
like($err, qr/GRANT CREATE ON SCHEMA public TO app/, 'the hint gives the exact GRANT');
$node->safe_psql('nocreate', 'GRANT CREATE ON SCHEMA public TO app');
$node->safe_psql('nocreate', 'CREATE EXTENSION ig_identity');
is($node->safe_psql('nocreate', q{SELECT pg_catalog.count(*) FROM pg_catalog.pg_constraint
	WHERE conname = 'instagram_user_cache_ig_account_id_ig_user_id_unique'}), '1', 'after that GRANT the repair completes');

# --- 2b. a partition with another owner: a clear error ------------------------
$node->safe_psql('postgres', 'CREATE DATABASE mixedpart');
$node->safe_psql('mixedpart', q{
	CREATE TABLE public.instagram_messages (id text NOT NULL, conversation_id text, ig_account_id text,
		from_id text, to_id text, message text, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
	CREATE TABLE public.instagram_messages_default PARTITION OF public.instagram_messages DEFAULT;
	ALTER TABLE public.instagram_messages OWNER TO app;
});
($rc, $out, $err) = $node->psql('mixedpart', 'CREATE EXTENSION ig_identity', on_error_stop => 1);
like($err, qr/partition "instagram_messages_default" of inbox table "public.instagram_messages" has another owner/,
	'the repair names a partition with another owner instead of PostgreSQL\'s bare "must be owner"');

# --- 3. the partitioned writer's lock is anyone's ----------------------------
$node->safe_psql('postgres', 'CREATE DATABASE parted');
$node->safe_psql('postgres', 'CREATE ROLE nobody LOGIN');   # no grant at all
$node->safe_psql('parted', q{
	CREATE TABLE public.instagram_messages (id text NOT NULL, conversation_id text, ig_account_id text,
		from_id text, to_id text, message text, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
	CREATE TABLE public.instagram_messages_default PARTITION OF public.instagram_messages DEFAULT;
	CREATE EXTENSION ig_identity;
	SET ig_identity.verify_on_connect = off;
	SELECT public.ig_connect_account('loc_a', '17841400000000001', '17841400000000001',
	                                 'review-token-A-0123456789', 'graph.facebook.com');
});
my $blocker = $node->background_psql('parted', on_error_stop => 1);
$blocker->query_safe("SET ROLE nobody; SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtext('ig_identity.instagram_messages'), pg_catalog.hashtext('mid.blocked'))");
($rc, $out, $err) = $node->psql('parted', q{
	SET statement_timeout = '3s';
	SELECT messages_stored FROM public.ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"messaging":[
	  {"sender":{"id":"1000000000000101"},"recipient":{"id":"17841400000000001"},"timestamp":1752834910447,"message":{"mid":"mid.blocked","text":"hi"}}]}]}');
}, on_error_stop => 1);
is($rc, 0, 'a role with no grants cannot stall ig_ingest_webhook on a partitioned instagram_messages')
  or diag($err);
$blocker->quit;

$node->stop;
done_testing();
