/* sim_metrics--1.2--1.3.sql: the model's second version. A server's disk
 * growth rate (server_templates.disk_growth), and default servers whose
 * baselines no longer sit on a status threshold: cpu with room for the
 * daily peak and its bursts, network at 6-20 % of the NIC. */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sim_metrics UPDATE TO '1.3'" to load this file. \quit

ALTER TABLE server_templates
    ADD COLUMN disk_growth real CHECK (disk_growth BETWEEN 0 AND 100);
COMMENT ON COLUMN server_templates.disk_growth IS
  'Disk growth in points a day before the daily log rotation gives most of it back; NULL: the role''s default. Set it high and the disk fills by growth alone.';

-- the default servers, where they still hold the values 1.2 installed
UPDATE server_templates t
   SET baseline_cpu = v.cpu, baseline_disk = v.disk, baseline_network = v.net
  FROM (VALUES
    ('web-nginx-icn-01', 30, 25, 50, 24, 25, 14),
    ('web-nginx-icn-02', 35, 30, 55, 28, 30, 16),
    ('web-nginx-pus-01', 25, 28, 45, 20, 28, 10),
    ('api-was-icn-01', 45, 40, 50, 30, 40, 10),
    ('api-was-icn-02', 50, 45, 55, 34, 45, 12),
    ('api-was-pus-01', 35, 38, 40, 24, 38, 7),
    ('db-mysql-icn-primary', 50, 50, 45, 34, 50, 9),
    ('db-mysql-icn-replica', 40, 48, 40, 28, 48, 8),
    ('db-mysql-pus-dr', 25, 45, 30, 18, 45, 6),
    ('cache-redis-icn-01', 35, 20, 60, 20, 20, 12),
    ('cache-redis-icn-02', 40, 25, 65, 22, 25, 14),
    ('storage-nfs-icn-01', 20, 75, 35, 14, 62, 20),
    ('storage-s3gw-pus-01', 15, 60, 40, 12, 55, 16),
    ('lb-haproxy-icn-01', 30, 15, 70, 16, 15, 18),
    ('lb-haproxy-pus-01', 25, 12, 65, 14, 12, 15)
  ) AS v(id, old_cpu, old_disk, old_net, cpu, disk, net)
 WHERE t.is_default AND t.id = v.id
   AND t.baseline_cpu = v.old_cpu AND t.baseline_disk = v.old_disk
   AND t.baseline_network = v.old_net;
