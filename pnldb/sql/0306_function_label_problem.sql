-- What is wrong with a label a person gave, e.g. a run name or triggered_by; NULL when nothing is. A label
-- is shown on terminals and in reports, so it may not carry a control character (a tab, an escape, a
-- line or paragraph separator) or a bidirectional override, which would change what is shown; and it
-- may not be blank once the characters that show nothing (spaces of every kind, zero-width and other
-- format characters, fillers) are removed. Other format characters inside visible text (a zero-width
-- joiner in an emoji, a non-joiner in Persian) are kept.
CREATE OR REPLACE FUNCTION {{ schema }}.label_problem(label text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    utf8      CONSTANT boolean := getdatabaseencoding() = 'UTF8';
    forbidden CONSTANT text := CASE WHEN utf8
        THEN '[\u0001-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]'
        ELSE '[\u0001-\u001f\u007f]' END;
    invisible CONSTANT text := CASE WHEN utf8
        THEN '[\s\u0085\u00a0\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u08e2\u115f\u1160\u1680\u17b4\u17b5'
             '\u180b-\u180f\u2000-\u200f\u202f\u205f-\u2064\u206a-\u206f\u2800\u3000\u3164\ufe00-\ufe0f\ufeff'
             '\uffa0\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3'
             '\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f\U000e0100-\U000e01ef]'
        ELSE '\s' END;
    bad text := substring(label FROM forbidden);
BEGIN
    IF bad IS NOT NULL THEN
        RETURN format('contains U+%s, a %s character', upper(lpad(to_hex(ascii(bad)), 4, '0')),
                      CASE WHEN ascii(bad) < 160 THEN 'control' ELSE 'layout' END);
    END IF;
    IF regexp_replace(label, invisible, '', 'g') = '' THEN
        RETURN 'is blank (nothing in it shows)';
    END IF;
    RETURN NULL;
END;
$$;
