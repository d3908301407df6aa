-- 011: how a camera's RTSP is carried, tcp (interleaved, the default: it
-- passes NAT and firewalls and loses nothing) or udp (what some cameras and
-- private networks want).
ALTER TABLE cameras ADD COLUMN transport TEXT NOT NULL DEFAULT 'tcp'
  CHECK (transport IN ('tcp', 'udp'));
