-- 002: users and bearer tokens (tokens are stored only as a BLAKE2b hash).
CREATE TABLE users (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  role        TEXT NOT NULL CHECK (role IN ('operator', 'worker', 'planner', 'admin')),
  pwhash      TEXT,                     -- argon2id string; NULL: token-only account
  created_at  TEXT NOT NULL,
  disabled    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE tokens (
  hash        BLOB PRIMARY KEY,
  user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at  TEXT NOT NULL,
  expires_at  TEXT,                     -- NULL: until revoked
  label       TEXT
);
CREATE INDEX tokens_user ON tokens (user_id);
