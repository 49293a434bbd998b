-- smtpscope sessions in ClickHouse: one row per SMTP session, as `smtpscope -F clickhouse` writes it.
--
--   clickhouse-client --multiquery < docs/clickhouse/schema.sql
--   smtpscope -r x.pcap -F clickhouse | clickhouse-client --query 'INSERT INTO smtpscope.sessions FORMAT JSONEachRow'
--   smtpscope -R 'sites/*.ndjson.gz' -F clickhouse | clickhouse-client --query 'INSERT INTO smtpscope.sessions FORMAT JSONEachRow'
--
-- Runs unchanged on Debian 12's clickhouse-server 18.16 and on current releases: only types and
-- clauses 18.16 knows (no DateTime64, LowCardinality, Map, JSON or Bool; booleans are UInt8 0/1).
-- Times are UTC; each DateTime has its microseconds since the epoch beside it (`*_us`).
-- Loading the same records twice is harmless: ReplacingMergeTree keeps one row per sensor, flow
-- and start (the start to the microsecond, so that a 4-tuple reused within a second stays two
-- sessions); read with FINAL (docs/clickhouse/queries.sql does) to see them merged before the
-- background merge has run.
--
-- Retention, current releases only (18.16 has no TTL):
--   ALTER TABLE smtpscope.sessions MODIFY TTL first_seen + INTERVAL 180 DAY;
--
-- Many sensors, many servers: create this table on every shard (as smtpscope.sessions_local)
-- and a Distributed table over them, e.g.
--   CREATE TABLE smtpscope.sessions AS smtpscope.sessions_local
--     ENGINE = Distributed(my_cluster, smtpscope, sessions_local, cityHash64(sensor, community_id));

CREATE DATABASE IF NOT EXISTS smtpscope;

CREATE TABLE IF NOT EXISTS smtpscope.sessions
(
    schema_version UInt8,
    sensor String,                          -- '' when the sensor has no name
    community_id String,                    -- Community ID v1: joins with Zeek, Suricata, Arkime
    file Nullable(String),
    interface Nullable(String),
    client String,                          -- ip:port, IPv6 as [addr]:port
    client_host String,
    client_port UInt16,
    client_ipv4 UInt32,                     -- IPv4 (or v4-mapped) as a number, 0 for IPv6: CIDRs as ranges
    server String,
    server_host String,
    server_port UInt16,
    server_ipv4 UInt32,
    first_seen DateTime('UTC'),
    first_seen_us Int64,                    -- microseconds since the epoch
    last_seen DateTime('UTC'),
    last_seen_us Int64,
    tunnel Nullable(String),
    helo Nullable(String),
    banner Nullable(String),
    ehlo_host Nullable(String),
    ehlo_extensions Nested(keyword String, params String),
    starttls_offered Nullable(UInt8),
    upgrade_verb Nullable(String),
    starttls_sent UInt8,
    starttls_reply Nullable(UInt16),
    tls_handshake UInt8,
    tls_version Nullable(String),
    cipher Nullable(String),
    sni Nullable(String),
    alpn Array(String),
    cert_subject Nullable(String),
    cert_issuer Nullable(String),
    cert_serial Nullable(String),
    cert_sha1 Nullable(String),
    cert_sha256 Nullable(String),
    cert_not_before Nullable(DateTime('UTC')),
    cert_not_after Nullable(DateTime('UTC')),
    cert_sans Array(String),
    cert_self_signed Nullable(UInt8),
    cert_key_bits Nullable(UInt32),
    cert_signature Nullable(String),
    tls_alert_name Nullable(String),
    tls_alert_level Nullable(String),
    tls_alert_from Nullable(String),
    mail_transactions Nullable(UInt32),
    messages_accepted Nullable(UInt32),
    rcpt_count Nullable(UInt32),
    mail_from Array(String),
    rcpt_to Array(String),
    bytes_client UInt64,
    bytes_server UInt64,
    clean_close Nullable(UInt8),
    auth_mechanisms Array(String),
    verdict String,
    evidence String,                        -- JSON: [{text, frame, dir}]
    findings Nested(name String, text String, frame UInt64),
    capture_complete UInt8,
    uses_bdat Nullable(UInt8),
    vlan Nullable(UInt16),
    packets UInt64,
    retransmissions UInt64,
    out_of_order UInt64,
    conflicting_overlaps UInt64,
    gaps UInt64,
    gap_bytes UInt64,
    end_reason String,
    client_closed UInt8,
    server_closed UInt8
)
ENGINE = ReplacingMergeTree()
PARTITION BY toDate(first_seen)
ORDER BY (sensor, community_id, first_seen, first_seen_us);
