-- Placeholder: filled by the #14 log-append work (indexes on transactions).
SELECT 1;
