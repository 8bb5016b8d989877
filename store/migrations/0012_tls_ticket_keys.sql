-- Placeholder: filled by the #14 TLS session ticket work.
SELECT 1;
