-- The platform's send rate shared by every worker (storage/send_gate.py): per channel, when its next message may
-- go (`tat`, generic cell rate algorithm) and its next broadcast message (`btat`: the broadcast rate, and a 429's
-- pause), on the database's clock. UNLOGGED: rewritten tens of times a second and worth nothing after a crash;
-- a crash empties it, and the next lease makes the row again.
CREATE UNLOGGED TABLE send_gate (
    channel TEXT PRIMARY KEY,
    tat     TIMESTAMPTZ NOT NULL,
    btat    TIMESTAMPTZ NOT NULL
);
