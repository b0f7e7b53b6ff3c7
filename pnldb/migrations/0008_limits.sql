-- depends: 0007_currency
-- The limits a DBA may tune per database (contract: robustness), one row each, read by the SQL layer
-- through limit_value(). Admins change a value; nobody adds or removes a limit but a migration.
CREATE TABLE {{ schema }}.limits (
    name        text PRIMARY KEY CONSTRAINT limits_name_valid CHECK (name ~ '^[a-z][a-z_]*$'),
    value       integer NOT NULL CONSTRAINT limits_value_positive CHECK (value > 0),
    description text NOT NULL,
    changed_by  text NOT NULL DEFAULT session_user,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
