-- +goose Up
CREATE TABLE users (
    uuid                 uuid PRIMARY KEY,
    username             text NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 64),
    password_hash        text NOT NULL,
    role                 text NOT NULL DEFAULT 'viewer' CHECK (role IN ('admin', 'viewer')),
    must_change_password boolean NOT NULL DEFAULT false,
    tokens_valid_from    timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE revoked_tokens (
    jti        text PRIMARY KEY,
    user_uuid  uuid NOT NULL REFERENCES users (uuid) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);

CREATE TABLE topologies (
    id                  uuid PRIMARY KEY,
    name                text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    mode                text NOT NULL DEFAULT 'unihost' CHECK (mode IN ('unihost', 'agent')),
    target_host_uuid    uuid,
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN
                          ('pending', 'deploying', 'active', 'degraded', 'failed', 'tearing_down', 'torn_down')),
    status_changed_at   timestamptz NOT NULL DEFAULT now(),
    created_at          timestamptz NOT NULL DEFAULT now(),
    version             integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    config_snapshot     jsonb NOT NULL DEFAULT '{}',
    -- Per-topology counters: the last mutation seq and the last outbox event seq handed out.
    mutation_seq        bigint NOT NULL DEFAULT 0,
    event_seq           bigint NOT NULL DEFAULT 0,
    -- Highest event seq known to be in the Redis stream (kept by the relay sweep).
    event_relayed_seq   bigint NOT NULL DEFAULT 0,
    -- Drain lease: the one worker allowed to apply this topology's mutations until drain_until.
    drain_owner         text,
    drain_until         timestamptz,
    CHECK ((mode = 'agent') = (target_host_uuid IS NOT NULL))
);
CREATE INDEX topologies_created_at ON topologies (created_at DESC, id);
CREATE INDEX topologies_status ON topologies (status);

CREATE TABLE lans (
    id                uuid PRIMARY KEY,
    topology_id       uuid NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    name              text NOT NULL CHECK (length(name) >= 1),
    subnet            text NOT NULL,
    is_dmz            boolean NOT NULL DEFAULT false,
    docker_network_id text,
    x                 double precision,
    y                 double precision,
    UNIQUE (topology_id, name),
    UNIQUE (topology_id, id)
);
CREATE INDEX lans_subnet ON lans (subnet);

CREATE TABLE deckies (
    uuid         uuid PRIMARY KEY,
    topology_id  uuid NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) >= 1),
    -- Explicit home LAN (DOMAIN D7). A LAN that is somebody's home cannot be deleted.
    home_lan_id  uuid,
    services     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(services) = 'array'),
    decky_config jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(decky_config) = 'object'),
    ip           text,
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN
                   ('pending', 'running', 'failed', 'degraded', 'tearing_down', 'torn_down', 'teardown_failed')),
    last_error   text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    x            double precision,
    y            double precision,
    UNIQUE (topology_id, name),
    UNIQUE (topology_id, uuid),
    FOREIGN KEY (topology_id, home_lan_id) REFERENCES lans (topology_id, id)
);

CREATE TABLE edges (
    id          uuid PRIMARY KEY,
    topology_id uuid NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    decky_uuid  uuid NOT NULL,
    lan_id      uuid NOT NULL,
    is_bridge   boolean NOT NULL DEFAULT false,
    forwards_l3 boolean NOT NULL DEFAULT false,
    UNIQUE (decky_uuid, lan_id),
    FOREIGN KEY (topology_id, decky_uuid) REFERENCES deckies (topology_id, uuid) ON DELETE CASCADE,
    FOREIGN KEY (topology_id, lan_id) REFERENCES lans (topology_id, id) ON DELETE CASCADE
);
CREATE INDEX edges_topology ON edges (topology_id);
CREATE INDEX edges_lan ON edges (lan_id);

CREATE TABLE mutations (
    id           uuid PRIMARY KEY,
    topology_id  uuid NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    seq          bigint NOT NULL,
    op           text NOT NULL CHECK (op IN ('add_lan', 'remove_lan', 'add_decky', 'attach_decky',
                   'detach_decky', 'remove_decky', 'update_decky', 'update_lan')),
    payload      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applying', 'applied', 'failed')),
    requested_at timestamptz NOT NULL DEFAULT now(),
    applied_at   timestamptz,
    reason       text,
    -- Set inside the op's transaction: the op's writes are committed and only
    -- materialisation and the final 'applied' remain (crash recovery, DOMAIN §4.4).
    committed_at timestamptz,
    UNIQUE (topology_id, seq),
    CHECK ((state IN ('applied', 'failed')) = (applied_at IS NOT NULL)),
    CHECK (reason IS NULL OR state = 'failed')
);
CREATE INDEX mutations_open ON mutations (topology_id, seq) WHERE state IN ('pending', 'applying');
CREATE INDEX mutations_topology_requested ON mutations (topology_id, requested_at DESC, seq DESC);

CREATE TABLE status_events (
    id          bigserial PRIMARY KEY,
    topology_id uuid NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    from_status text NOT NULL,
    to_status   text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    reason      text
);
CREATE INDEX status_events_topology ON status_events (topology_id, id DESC);

-- Transactional outbox for the Redis streams (SYSTEM §3.3): every transition
-- writes its event here in the same transaction; the relay appends it to Redis.
CREATE TABLE events (
    topology_id uuid NOT NULL REFERENCES topologies (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    name        text NOT NULL,
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topology_id, seq)
);

-- +goose Down
DROP TABLE events;
DROP TABLE status_events;
DROP TABLE mutations;
DROP TABLE edges;
DROP TABLE deckies;
DROP TABLE lans;
DROP TABLE topologies;
DROP TABLE revoked_tokens;
DROP TABLE users;
