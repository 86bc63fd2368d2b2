-- Row-level security equivalent to an organization-scoped Mailroom key, for PostGraphile in
-- bench/run.ts. The JWT names the role and the claims: org_id, and hidden_labels (comma-separated
-- labels the key may not see, as a key without LABEL_SPAM_READ / LABEL_TRASH_READ).
-- :password is replaced by bench/run.ts. Roles are cluster-wide, hence the bench_ prefix.
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_reader') THEN CREATE ROLE bench_reader NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_authenticator') THEN
    CREATE ROLE bench_authenticator LOGIN NOINHERIT;
  END IF;
END $$;
ALTER ROLE bench_authenticator PASSWORD :'password';
GRANT bench_reader TO bench_authenticator;
GRANT USAGE ON SCHEMA public TO bench_reader;
GRANT SELECT ON organizations, pods, inboxes, threads, messages, attachments TO bench_reader;

CREATE OR REPLACE FUNCTION bench_org_id() RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT nullif(current_setting('jwt.claims.org_id', true), '')::bigint $$;
CREATE OR REPLACE FUNCTION bench_hidden_labels() RETURNS text[] LANGUAGE sql STABLE
  AS $$ SELECT coalesce(string_to_array(nullif(current_setting('jwt.claims.hidden_labels', true), ''), ','), '{}') $$;
GRANT EXECUTE ON FUNCTION bench_org_id(), bench_hidden_labels() TO bench_reader;

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE pods ENABLE ROW LEVEL SECURITY;
ALTER TABLE inboxes ENABLE ROW LEVEL SECURITY;
ALTER TABLE threads ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE attachments ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS bench_org ON organizations;
CREATE POLICY bench_org ON organizations FOR SELECT TO bench_reader USING (id = bench_org_id());
DROP POLICY IF EXISTS bench_org ON pods;
CREATE POLICY bench_org ON pods FOR SELECT TO bench_reader USING (org_id = bench_org_id());
DROP POLICY IF EXISTS bench_org ON inboxes;
CREATE POLICY bench_org ON inboxes FOR SELECT TO bench_reader USING (org_id = bench_org_id());
DROP POLICY IF EXISTS bench_org ON threads;
CREATE POLICY bench_org ON threads FOR SELECT TO bench_reader USING (org_id = bench_org_id());
DROP POLICY IF EXISTS bench_org ON messages;
CREATE POLICY bench_org ON messages FOR SELECT TO bench_reader
  USING (org_id = bench_org_id() AND NOT (labels && bench_hidden_labels()));
DROP POLICY IF EXISTS bench_org ON attachments;
CREATE POLICY bench_org ON attachments FOR SELECT TO bench_reader USING (org_id = bench_org_id());
