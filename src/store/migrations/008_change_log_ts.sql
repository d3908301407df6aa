-- 008: the change log by time. Replay asks for the changes of a past window
-- (GET /api/history/changes); without this each such read, and the weekly
-- prune, scans the whole log. The log takes one row per case step or alert,
-- never one per fix, so the index costs writes little.
CREATE INDEX change_log_ts ON change_log (ts);
