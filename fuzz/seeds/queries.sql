SELECT pt FROM muons WHERE ABS(eta) < 2.4
SELECT m.event_id, COUNT(*) AS n FROM muons m GROUP BY m.event_id HAVING COUNT(*) >= 2 ORDER BY n DESC LIMIT 10
WITH pairs AS (SELECT a.event_id, a.pt AS pt1, b.pt AS pt2 FROM muons a JOIN muons b ON a.event_id = b.event_id AND a.idx < b.idx) SELECT pt1 + pt2 AS s FROM pairs
SELECT run, COUNT(*) AS n FROM events WHERE n_muons >= 2 GROUP BY run
SELECT CASE WHEN pt > 20 THEN 'hard' ELSE 'soft' END AS kind, SQRT(pt * pt) FROM jets UNION ALL SELECT 'x', 1.0 FROM jets
SELECT event_id FROM events WHERE timestamp_ns BETWEEN 1 AND 2 AND NOT (n_tracks IN (1, 2, 3))
