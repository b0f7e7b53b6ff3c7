-- depends: 0014_integrity
-- Entitlements (issue 18, item 7): which roles see and act on which use case. A login is entitled to a
-- use case when it is a member (through any chain) of a role holding a grant of it, or of all use cases
-- (use_case_id NULL). Roles by name: names survive a dump and restore, oids do not.
CREATE TABLE {{ schema }}.use_case_grants (
    use_case_id uuid REFERENCES {{ schema }}.use_cases ON DELETE CASCADE,
    role_name   name NOT NULL,
    granted_by  text NOT NULL DEFAULT session_user,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT use_case_grants_one_per_role UNIQUE NULLS NOT DISTINCT (use_case_id, role_name)
);
CREATE INDEX ix_use_case_grants_role ON {{ schema }}.use_case_grants (role_name);

-- Today's behaviour holds, for a fresh installation and an existing one alike, until an admin narrows it.
INSERT INTO {{ schema }}.use_case_grants (use_case_id, role_name)
VALUES (NULL, '{{ roles.reader }}'), (NULL, '{{ roles.operator }}'),
       (NULL, '{{ roles.admin }}'), (NULL, '{{ roles.approver }}');

-- The rule, for the policies: a grant row is the session's when its login is a member of the row's
-- role (a dropped role's grants match nobody). Each policy below reads the grants through it, in
-- sub-selects without a reference to the row, so the entitled set is computed once per statement.
-- The layer's entitled_to_all_use_cases() and entitled_use_cases() (sql/0141, 0142) say the same for the
-- SECURITY DEFINER functions, which run as the owner and so bypass the policies.
ALTER TABLE {{ schema }}.use_case_grants ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON {{ schema }}.use_case_grants FOR SELECT
    USING (EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                   WHERE r.rolname = role_name AND pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER')));

{% set all_granted -%}
(SELECT EXISTS (SELECT 1 FROM {{ schema }}.use_case_grants g WHERE g.use_case_id IS NULL))
{%- endset %}
{% set granted -%}
(SELECT g.use_case_id FROM {{ schema }}.use_case_grants g WHERE g.use_case_id IS NOT NULL)
{%- endset %}
{#- An array, not IN: an uncorrelated ARRAY(...) is an InitPlan in a WITH CHECK too (the loader's bulk
    INSERT), where IN (...) would be a sub-plan run for each new row. #}
{% set granted_array -%}
ARRAY{{ granted }}
{%- endset %}
{% set runs_granted -%}
(SELECT r.id FROM {{ schema }}.calculation_runs r WHERE r.use_case_id IN {{ granted }})
{%- endset %}
{% for table in ["use_cases", "metadata_rules", "rule_versions", "fact_pnl_entries", "fact_loads",
                 "fact_load_slices", "calculation_runs", "close_checks", "close_events", "use_case_runs"] %}
ALTER TABLE {{ schema }}.{{ table }} ENABLE ROW LEVEL SECURITY;
CREATE POLICY entitled ON {{ schema }}.{{ table }}
    USING ({{ all_granted }} OR use_case_id = ANY ({{ granted_array }}))
    WITH CHECK ({{ all_granted }} OR use_case_id = ANY ({{ granted_array }}));
{% endfor %}
{% for table in ["calculation_run_rules", "calculation_run_inputs", "calculation_run_fx"] %}
ALTER TABLE {{ schema }}.{{ table }} ENABLE ROW LEVEL SECURITY;
CREATE POLICY entitled ON {{ schema }}.{{ table }}
    USING ({{ all_granted }} OR calculation_run_id IN {{ runs_granted }});
{% endfor %}
ALTER TABLE {{ schema }}.fact_calculated_results ENABLE ROW LEVEL SECURITY;
CREATE POLICY entitled ON {{ schema }}.fact_calculated_results
    USING ({{ all_granted }} OR calculation_run_id IN {{ runs_granted }}
           OR run_id IN (SELECT l.run_id FROM {{ schema }}.use_case_runs l WHERE l.use_case_id IN {{ granted }}));
-- An admin creates a use case it is not yet entitled to: the use case's trigger (sql/0144) grants it to
-- the creator's login in the same statement.
CREATE POLICY created ON {{ schema }}.use_cases FOR INSERT WITH CHECK (true);
