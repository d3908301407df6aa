-- 005: incidents and their closed loop.
--
-- Users gain two roles: 'department' (a user of one department, who handles
-- what is dispatched to it) and 'resident' (who reports and evaluates their
-- own cases). SQLite cannot widen a CHECK in place: the users table is
-- rebuilt, tokens with it so that dropping the old users cascades nothing.
CREATE TABLE users_new (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  role        TEXT NOT NULL CHECK (role IN ('operator', 'worker', 'planner', 'admin',
                                            'department', 'resident')),
  department  TEXT,                     -- for role 'department': 城管, 环卫 …
  pwhash      TEXT,
  created_at  TEXT NOT NULL,
  disabled    INTEGER NOT NULL DEFAULT 0,
  CHECK ((role = 'department') = (department IS NOT NULL))
);
INSERT INTO users_new (id, name, role, pwhash, created_at, disabled)
  SELECT id, name, role, pwhash, created_at, disabled FROM users;
CREATE TABLE tokens_new (
  hash        BLOB PRIMARY KEY,
  user_id     INTEGER NOT NULL REFERENCES users_new(id) ON DELETE CASCADE,
  created_at  TEXT NOT NULL,
  expires_at  TEXT,
  label       TEXT
);
INSERT INTO tokens_new SELECT hash, user_id, created_at, expires_at, label FROM tokens;
DROP TABLE tokens;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
ALTER TABLE tokens_new RENAME TO tokens;
CREATE INDEX tokens_user ON tokens (user_id);

-- The catalogue of event and component classes after GB/T 30428.2
-- (数字化城市管理信息系统 第2部分：管理部件和事件): major classes have no parent.
-- kind 'event' (事件) or 'component' (部件). Data, editable by an admin.
CREATE TABLE categories (
  code        TEXT PRIMARY KEY,
  parent      TEXT REFERENCES categories(code),
  name        TEXT NOT NULL,
  kind        TEXT NOT NULL CHECK (kind IN ('event', 'component')),
  department  TEXT,                     -- who usually handles it (dispatch default)
  active      INTEGER NOT NULL DEFAULT 1
);

-- Time limits per category and step, in seconds. A category without its own
-- row takes its major class's, then the '*' row.
CREATE TABLE time_limits (
  category    TEXT NOT NULL,            -- a category code, or '*'
  step        TEXT NOT NULL CHECK (step IN ('register', 'dispatch', 'handle', 'verify',
                                            'close')),
  seconds     INTEGER NOT NULL CHECK (seconds > 0),
  PRIMARY KEY (category, step)
);

CREATE TABLE incidents (
  id            INTEGER PRIMARY KEY,
  case_no       TEXT NOT NULL UNIQUE,   -- 2026-000123
  category      TEXT NOT NULL REFERENCES categories(code),
  description   TEXT NOT NULL,
  lon           REAL,                   -- EPSG:4326; NULL while unplaced
  lat           REAL,
  src_x         REAL,                   -- as reported, in src_crs
  src_y         REAL,
  src_crs       TEXT,
  address       TEXT,
  chain         TEXT NOT NULL DEFAULT '{}',   -- the geotag chain at report time
  district_id   TEXT,
  street_id     TEXT,
  community_id  TEXT,
  grid_id       TEXT,
  building_id   TEXT,
  source        TEXT NOT NULL CHECK (source IN ('worker', 'resident', 'department',
                                                'hotline', 'camera')),
  reporter_id   INTEGER REFERENCES users(id),
  reporter      TEXT NOT NULL DEFAULT '{}',   -- personal data: name, phone, email
  department    TEXT,
  status        TEXT NOT NULL CHECK (status IN ('reported', 'registered', 'rejected',
                  'dispatched', 'handled', 'verified', 'closed', 'evaluated')),
  step_started  INTEGER NOT NULL,       -- Unix seconds the current step began
  deadline      INTEGER,                -- Unix seconds; NULL when the step has none
  level         INTEGER NOT NULL DEFAULT 0,   -- 0 grid, 1 community, 2 street, 3 district
  overdue_count INTEGER NOT NULL DEFAULT 0,   -- steps that ran past their deadline
  flags         TEXT NOT NULL DEFAULT '[]',
  props         TEXT NOT NULL DEFAULT '{}',   -- Open311 attributes, hotline columns
  result        TEXT,                   -- the handling result, made public on closing
  rating        INTEGER CHECK (rating BETWEEN 1 AND 5),
  rating_comment TEXT,
  external_id   TEXT,                   -- hotline work-order number
  token         TEXT UNIQUE,            -- Open311 token
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  closed_at     INTEGER,
  UNIQUE (source, external_id)
);
CREATE INDEX incidents_status ON incidents (status);
CREATE INDEX incidents_deadline ON incidents (deadline) WHERE deadline IS NOT NULL;
CREATE INDEX incidents_grid ON incidents (grid_id, created_at);
CREATE INDEX incidents_created ON incidents (created_at);
CREATE INDEX incidents_lon ON incidents (lon);

-- The audit trail: one row per event of a case, never edited.
CREATE TABLE incident_history (
  id          INTEGER PRIMARY KEY,
  incident_id INTEGER NOT NULL REFERENCES incidents(id),
  at          INTEGER NOT NULL,
  actor_id    INTEGER,
  actor       TEXT NOT NULL,            -- user name, or 'system'
  role        TEXT NOT NULL,
  action      TEXT NOT NULL,
  from_status TEXT,
  to_status   TEXT,
  note        TEXT,
  data        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_history_incident ON incident_history (incident_id, id);
CREATE TRIGGER incident_history_no_update BEFORE UPDATE ON incident_history
  BEGIN SELECT RAISE(ABORT, 'the audit trail cannot be edited'); END;
CREATE TRIGGER incident_history_no_delete BEFORE DELETE ON incident_history
  BEGIN SELECT RAISE(ABORT, 'the audit trail cannot be edited'); END;

-- Photos are files named by content hash beside the database.
CREATE TABLE photos (
  hash        TEXT PRIMARY KEY,
  bytes       INTEGER NOT NULL,
  exif        TEXT NOT NULL DEFAULT '{}',
  created_at  INTEGER NOT NULL
);
CREATE TABLE incident_photos (
  incident_id INTEGER NOT NULL REFERENCES incidents(id),
  hash        TEXT NOT NULL REFERENCES photos(hash),
  part        TEXT,                     -- the form part or file name it came in
  stage       TEXT NOT NULL DEFAULT 'report',   -- report, handle, verify
  ord         INTEGER NOT NULL,
  PRIMARY KEY (incident_id, ord)
);

-- A phone's retry with the same Idempotency-Key gets the first answer.
CREATE TABLE idempotency (
  user_id     INTEGER NOT NULL,         -- 0 for none
  key         TEXT NOT NULL,
  incident_id INTEGER NOT NULL REFERENCES incidents(id),
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (user_id, key)
);

-- Case numbers count per year.
CREATE TABLE case_counters (
  year        INTEGER PRIMARY KEY,
  last        INTEGER NOT NULL
);

INSERT INTO time_limits (category, step, seconds) VALUES
  ('*', 'register', 3600), ('*', 'dispatch', 3600), ('*', 'handle', 86400),
  ('*', 'verify', 14400), ('*', 'close', 7200),
  -- 突发事件: minutes, not hours
  ('E04', 'register', 600), ('E04', 'dispatch', 600), ('E04', 'handle', 7200),
  ('E04', 'verify', 3600), ('E04', 'close', 3600),
  -- 施工管理 and 公用设施 repairs take days
  ('E03', 'handle', 259200), ('C01', 'handle', 259200), ('C02', 'handle', 172800);

INSERT INTO categories (code, parent, name, kind, department) VALUES
  ('E01', NULL, '市容环境', 'event', '环卫'),
  ('E01.01', 'E01', '私搭乱建', 'event', '城管'),
  ('E01.02', 'E01', '暴露垃圾', 'event', '环卫'),
  ('E01.03', 'E01', '积存垃圾渣土', 'event', '环卫'),
  ('E01.04', 'E01', '道路不洁', 'event', '环卫'),
  ('E01.05', 'E01', '水域不洁', 'event', '环卫'),
  ('E01.06', 'E01', '绿地脏乱', 'event', '环卫'),
  ('E01.07', 'E01', '废弃车辆', 'event', '城管'),
  ('E01.08', 'E01', '焚烧垃圾树叶', 'event', '环卫'),
  ('E02', NULL, '宣传广告', 'event', '城管'),
  ('E02.01', 'E02', '非法小广告', 'event', '城管'),
  ('E02.02', 'E02', '违章张贴悬挂广告牌匾', 'event', '城管'),
  ('E02.03', 'E02', '占道广告牌', 'event', '城管'),
  ('E02.04', 'E02', '街头散发广告', 'event', '城管'),
  ('E03', NULL, '施工管理', 'event', '城管'),
  ('E03.01', 'E03', '施工扰民', 'event', '城管'),
  ('E03.02', 'E03', '工地扬尘', 'event', '城管'),
  ('E03.03', 'E03', '道路遗撒', 'event', '环卫'),
  ('E03.04', 'E03', '施工废弃料', 'event', '城管'),
  ('E03.05', 'E03', '违规占道施工', 'event', '城管'),
  ('E04', NULL, '突发事件', 'event', '公安'),
  ('E04.01', 'E04', '路面塌陷', 'event', '城管'),
  ('E04.02', 'E04', '自来水管破裂', 'event', '城管'),
  ('E04.03', 'E04', '燃气管道破裂', 'event', '公安'),
  ('E04.04', 'E04', '下水道堵塞或破损', 'event', '城管'),
  ('E04.05', 'E04', '道路积水', 'event', '城管'),
  ('E04.06', 'E04', '道路积雪结冰', 'event', '环卫'),
  ('E04.07', 'E04', '火灾', 'event', '公安'),
  ('E05', NULL, '街面秩序', 'event', '城管'),
  ('E05.01', 'E05', '无照经营游商', 'event', '城管'),
  ('E05.02', 'E05', '店外经营', 'event', '城管'),
  ('E05.03', 'E05', '占道废品收购', 'event', '城管'),
  ('E05.04', 'E05', '机动车乱停放', 'event', '公安'),
  ('E05.05', 'E05', '非机动车乱停放', 'event', '城管'),
  ('E05.06', 'E05', '露天烧烤', 'event', '城管'),
  ('E05.07', 'E05', '噪声扰民', 'event', '公安'),
  ('E05.08', 'E05', '流浪乞讨', 'event', '公安'),
  ('E99', NULL, '其他事件', 'event', NULL),
  ('C01', NULL, '公用设施', 'component', '城管'),
  ('C01.01', 'C01', '上水井盖', 'component', '城管'),
  ('C01.02', 'C01', '污水井盖', 'component', '城管'),
  ('C01.03', 'C01', '雨水篦子', 'component', '城管'),
  ('C01.04', 'C01', '消防栓', 'component', '公安'),
  ('C01.05', 'C01', '路灯', 'component', '城管'),
  ('C02', NULL, '道路交通', 'component', '公安'),
  ('C02.01', 'C02', '交通信号灯', 'component', '公安'),
  ('C02.02', 'C02', '交通标志牌', 'component', '公安'),
  ('C02.03', 'C02', '道路护栏', 'component', '城管'),
  ('C02.04', 'C02', '公交站亭', 'component', '城管'),
  ('C03', NULL, '市容环境设施', 'component', '环卫'),
  ('C03.01', 'C03', '公共厕所', 'component', '环卫'),
  ('C03.02', 'C03', '垃圾箱', 'component', '环卫'),
  ('C03.03', 'C03', '垃圾楼', 'component', '环卫'),
  ('C04', NULL, '园林绿化', 'component', '城管'),
  ('C04.01', 'C04', '行道树', 'component', '城管'),
  ('C04.02', 'C04', '绿地', 'component', '城管'),
  ('C05', NULL, '房屋土地', 'component', '城管'),
  ('C06', NULL, '其他设施', 'component', NULL);
