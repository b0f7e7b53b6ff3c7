-- Legacy writers set only `amount`; new writers set only the measures. Each side follows the other
-- (facts are never updated: contract §6).
-- A legacy row's WTD and YTD are running sums of daily amounts over its series (use case, scenario,
-- category_code, attributes), exactly as the Step 4.2 back-fill computed them, over the series' current
-- facts: those of a superseded slice (replace_facts, --replace) are history, not part of the week or
-- the year (rows of this statement and transaction are current: their slices are not superseded).
CREATE OR REPLACE FUNCTION {{ schema }}.fact_measures_follow_amount() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.daily_amount IS NULL THEN
        NEW.daily_amount := NEW.amount;
    END IF;
    IF NEW.amount IS NULL THEN
        NEW.amount := NEW.daily_amount;
    END IF;
{%- for measure, period in [("wtd", "week"), ("ytd", "year")] %}
    IF NEW.{{ measure }}_amount IS NULL THEN
        NEW.{{ measure }}_amount := NEW.daily_amount + coalesce((
            SELECT sum(f.daily_amount) FROM {{ schema }}.fact_pnl_entries f
            WHERE f.use_case_id = NEW.use_case_id AND f.scenario = NEW.scenario
              AND f.category_code = NEW.category_code AND f.attributes = NEW.attributes
              AND f.pnl_date >= date_trunc('{{ period }}', NEW.pnl_date)::date
              AND (f.pnl_date, f.id) < (NEW.pnl_date, NEW.id)
              AND NOT EXISTS (SELECT 1 FROM {{ schema }}.fact_load_slices s
                              WHERE s.load_id = f.load_id AND s.pnl_date = f.pnl_date AND s.scenario = f.scenario
                                AND s.superseded_at IS NOT NULL)), 0);
    END IF;
{%- endfor %}
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER fact_measures_follow_amount_on_insert
    BEFORE INSERT ON {{ schema }}.fact_pnl_entries
    FOR EACH ROW
    WHEN (NEW.amount IS NULL OR NEW.daily_amount IS NULL OR NEW.wtd_amount IS NULL OR NEW.ytd_amount IS NULL)
    EXECUTE FUNCTION {{ schema }}.fact_measures_follow_amount();
