-- Helpers shared by the check files (run once before them).

-- Scheme and host of a URL, without user info, path or query: those may carry tokens.
CREATE OR REPLACE MACRO url_origin(url) AS
    regexp_extract(url, '^([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^@/]*@)?([^/?#]*)', 1)
    || regexp_extract(url, '^([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^@/]*@)?([^/?#]*)', 2);

-- Evidence lists: at most ten items, then how many more.
CREATE OR REPLACE MACRO listing(items) AS
    array_to_string(items[1:10], '; ')
    || CASE WHEN len(items) > 10 THEN format('; and {} more', len(items) - 10) ELSE '' END;
