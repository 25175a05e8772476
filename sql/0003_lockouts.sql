-- claimd schema, version 3: per-MAC lockout after repeated wrong challenge responses,
-- shared by every daemon on the database.

CREATE TABLE mac_lockouts (
    mac          text PRIMARY KEY CHECK (mac ~ '^[0-9A-F]{12}$'),
    failures     integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    lockouts     integer NOT NULL DEFAULT 0 CHECK (lockouts >= 0),
    locked_until timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE mac_lockouts IS 'Wrong challenge responses per MAC; at limits.lockout_failures the MAC is locked, for longer each time.';
COMMENT ON COLUMN mac_lockouts.mac IS 'The device.';
COMMENT ON COLUMN mac_lockouts.failures IS 'Wrong responses since the last lock or success.';
COMMENT ON COLUMN mac_lockouts.lockouts IS 'How many times this MAC has been locked: the lock length doubles each time.';
COMMENT ON COLUMN mac_lockouts.locked_until IS 'While in the future, every verify of this MAC is refused, even a correct one.';
COMMENT ON COLUMN mac_lockouts.updated_at IS 'Last change.';
