DELETE FROM {{ schema }}.limits WHERE name = 'lock_wait_ms';
DROP TABLE {{ schema }}.lock_rows;
