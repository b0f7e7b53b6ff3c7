-- One close unit as the SQL API shows it (contract §7): {"use_case_id", "pnl_date", "status",
-- "official_run_id", "pending_run_id", "restatement", "locked_through"} plus "use_case_name",
-- "signoff_policy", "version" (of the official run: 1, 2, ... per restatement), "signed_off_by",
-- "signed_off_at", "submitted_by", "submitted_at". restatement: a run is pending while another is
-- official. Every transition returns this for its unit.
CREATE OR REPLACE FUNCTION {{ schema }}.get_cob_status(use_case_id uuid, pnl_date date) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    uc     record;
    result jsonb;
BEGIN
    IF get_cob_status.use_case_id IS NULL OR get_cob_status.pnl_date IS NULL THEN
        RAISE EXCEPTION 'get_cob_status needs a use_case_id and a pnl_date' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT u.name, u.signoff_policy INTO uc FROM {{ schema }}.use_cases u WHERE u.use_case_id = get_cob_status.use_case_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown use case %', get_cob_status.use_case_id
            USING ERRCODE = 'no_data_found', HINT = 'use_case_id must be a {{ schema }}.use_cases.use_case_id';
    END IF;
    SELECT jsonb_build_object(
               'use_case_id', s.use_case_id, 'use_case_name', uc.name, 'pnl_date', s.pnl_date, 'status', s.status,
               'official_run_id', s.official_run_id, 'pending_run_id', s.pending_run_id,
               'restatement', s.pending_run_id IS NOT NULL AND s.official_run_id IS NOT NULL,
               'locked_through', s.locked_through, 'signoff_policy', uc.signoff_policy, 'version', s.version,
               'signed_off_by', s.signed_off_by,
               'signed_off_at', to_char(s.signed_off_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00',
               'submitted_by', s.submitted_by,
               'submitted_at', to_char(s.submitted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00')
    INTO result
    FROM {{ schema }}.cob_states(get_cob_status.use_case_id, ARRAY[get_cob_status.pnl_date]) s;
    RETURN result;
END;
$$;
