DROP TABLE {{ schema }}.limits;
