-- Questions over smtpscope.sessions (docs/clickhouse/schema.sql). Each query reads with FINAL,
-- so sessions loaded twice count once. They run on 18.16 and on current releases: CIDRs are
-- written as IPv4 ranges (IPv4StringToNum), not with the newer CIDR functions.
-- The two CIDR groups below are the seed story's hub sites: POA 10.1.0.0/24, TOR 10.2.0.0/24.

-- name: pairs_per_week
-- Pairs per week: sessions per client host x server host x server port x verdict.
SELECT
    toMonday(first_seen) AS week,
    client_host,
    server_host,
    server_port,
    verdict,
    count() AS sessions
FROM smtpscope.sessions FINAL
GROUP BY week, client_host, server_host, server_port, verdict
ORDER BY week, client_host, server_host, server_port, verdict;

-- name: violations_plaintext
-- Violations of "plaintext between POA and TOR" (as `smtpscope check --expect plaintext
-- --between 10.1.0.0/24 10.2.0.0/24`): TLS was used, either direction.
SELECT client, server, first_seen, first_seen_us, verdict, tls_version
FROM smtpscope.sessions FINAL
WHERE ((client_ipv4 BETWEEN IPv4StringToNum('10.1.0.0') AND IPv4StringToNum('10.1.0.255')
        AND server_ipv4 BETWEEN IPv4StringToNum('10.2.0.0') AND IPv4StringToNum('10.2.0.255'))
    OR (client_ipv4 BETWEEN IPv4StringToNum('10.2.0.0') AND IPv4StringToNum('10.2.0.255')
        AND server_ipv4 BETWEEN IPv4StringToNum('10.1.0.0') AND IPv4StringToNum('10.1.0.255')))
  AND (verdict = 'starttls' OR (verdict IN ('implicit-tls', 'incomplete') AND tls_handshake = 1))
ORDER BY first_seen_us, client, server;

-- name: violations_tls
-- Violations of "TLS between POA and TOR" (as `--expect tls`): mail or AUTH in clear, a stripped
-- STARTTLS, or a session that stayed in clear once its EHLO was seen (a session the capture left
-- before EHLO, still open, is unproven, not a violation).
SELECT client, server, first_seen, first_seen_us, verdict
FROM smtpscope.sessions FINAL
WHERE ((client_ipv4 BETWEEN IPv4StringToNum('10.1.0.0') AND IPv4StringToNum('10.1.0.255')
        AND server_ipv4 BETWEEN IPv4StringToNum('10.2.0.0') AND IPv4StringToNum('10.2.0.255'))
    OR (client_ipv4 BETWEEN IPv4StringToNum('10.2.0.0') AND IPv4StringToNum('10.2.0.255')
        AND server_ipv4 BETWEEN IPv4StringToNum('10.1.0.0') AND IPv4StringToNum('10.1.0.255')))
  AND (verdict = 'stripped'
    OR (verdict IN ('starttls-refused', 'starttls-failed', 'incomplete')
        AND tls_handshake = 0 AND (mail_transactions > 0 OR notEmpty(auth_mechanisms)))
    OR (verdict IN ('plaintext', 'starttls-offered-unused')
        AND NOT (helo IS NULL AND ifNull(mail_transactions, 0) = 0 AND empty(auth_mechanisms)
                 AND end_reason IN ('end-of-capture', 'evicted', 'idle')
                 AND client_closed = 0 AND server_closed = 0)))
ORDER BY first_seen_us, client, server;

-- name: certificates_expiring
-- Certificates expiring within 30 days (or expired), by server, with the last session that showed each.
SELECT
    server_host,
    server_port,
    assumeNotNull(cert_sha1) AS sha1,
    any(cert_subject) AS subject,
    any(cert_not_after) AS not_after,
    max(last_seen) AS last_shown
FROM smtpscope.sessions FINAL
WHERE cert_sha1 IS NOT NULL AND cert_not_after < now() + INTERVAL 30 DAY
GROUP BY server_host, server_port, sha1
ORDER BY not_after, server_host, server_port;

-- name: tls_versions_per_server
-- TLS versions per server: sessions per negotiated version.
SELECT
    server_host,
    server_port,
    assumeNotNull(tls_version) AS version,
    count() AS sessions
FROM smtpscope.sessions FINAL
WHERE tls_handshake = 1 AND tls_version IS NOT NULL
GROUP BY server_host, server_port, version
ORDER BY server_host, server_port, version;
