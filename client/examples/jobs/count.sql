-- A Batchyard SQL job: the statements run in order on the database the workers know as
-- the job's target; the last result set is kept as the run's result `result.csv`.
CREATE TEMPORARY TABLE forecast (day int, city text, rain_mm int);
INSERT INTO forecast VALUES (1, 'Oslo', 3), (2, 'Oslo', 6), (3, 'Bergen', 9);
SELECT city, count(*) AS days, sum(rain_mm) AS rain_mm FROM forecast GROUP BY city ORDER BY city;
