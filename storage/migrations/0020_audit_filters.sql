-- Admins read the audit log in chat (/nhatky) by date and by action, and the processing report counts actions
-- in a period: both filter on these columns, which grow with every staff action.
CREATE INDEX audit_at ON audit_log(at);
CREATE INDEX audit_action ON audit_log(action, at);
