
# Helpers shared by the sim_metrics TAP tests (t/0*.pl).
#
# Every wait here is a bounded poll with a deadline; the only fixed sleeps are
# the "nothing happens" windows of quiet_window(), which measure that a value
# does NOT change over a bounded interval.
package SimMetricsTest;

use strict;
use Time::Local ();
use warnings FATAL => 'all';

use Exporter 'import';
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(
  sim_node wait_until wait_value worker_pid wait_new_worker worker_pids_sql
  sim_status_hash sim_tick_now
  quiet_window log_offset log_since log_time crash_lines supabase_shape crash_restart
);

# Waits in the test framework (wait_for_log, background_psql, safe_psql)
# give up after this many seconds instead of the default 180.
$PostgreSQL::Test::Utils::timeout_default = 60;

# A node with the extension preloaded (unless no_preload => 1) and the extra
# postgresql.conf lines in $conf. Started unless start => 0.
sub sim_node
{
	my ($name, $conf, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'sim_metrics'\n")
	  unless $opts{no_preload};
	$node->append_conf('postgresql.conf', $conf) if defined $conf;
	$node->start unless defined $opts{start} && !$opts{start};
	return $node;
}

# Run $sql until its output equals $expected (a string) or matches it (a
# qr//), for at most $secs seconds. Errors (e.g. while the server restarts)
# count as "not yet". Returns the matching output, or undef after a diag.
sub wait_until
{
	my ($node, $sql, $expected, $secs, $db) = @_;
	$secs //= 30;
	$db //= 'postgres';
	my $deadline = time + $secs;
	my ($out, $err, $ret) = ('', '', -1);

	while (1)
	{
		$ret = $node->psql($db, $sql, stdout => \$out, stderr => \$err);
		if ($ret == 0)
		{
			return $out
			  if (ref $expected eq 'Regexp'
				? $out =~ $expected
				: $out eq $expected);
		}
		last if time > $deadline;
		usleep(100_000);
	}
	diag "wait_until: no match within ${secs}s for: $sql\n"
	  . "expected: $expected\nlast output: $out\nlast stderr: $err";
	return undef;
}

# Poll a single-value query until $pred->($value) holds; returns the value
# that satisfied it, or undef on timeout.
sub wait_value
{
	my ($node, $sql, $pred, $secs, $what) = @_;
	$secs //= 30;
	my $deadline = time + $secs;
	my ($out, $err) = ('', '');

	while (1)
	{
		my $ret = $node->psql('postgres', $sql, stdout => \$out, stderr => \$err);
		return $out if $ret == 0 && $out ne '' && $pred->($out);
		last if time > $deadline;
		usleep(100_000);
	}
	diag "wait_value: " . ($what // $sql)
	  . " not reached within ${secs}s; last output '$out', stderr '$err'";
	return undef;
}

# Pids of the sim_metrics workers of one kind ('ticker', the default, or
# 'writer') in pg_stat_activity, comma separated.
sub worker_pids_sql
{
	my ($type) = @_;
	$type //= 'ticker';
	return "SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), '')
	          FROM pg_stat_activity WHERE backend_type = 'sim_metrics $type'";
}

sub worker_pid
{
	my ($node, $type) = @_;
	return $node->safe_psql('postgres', worker_pids_sql($type));
}

# Wait (bounded) for exactly one worker of the kind whose pid differs from
# $old_pid; returns its pid, or undef on timeout.
sub wait_new_worker
{
	my ($node, $old_pid, $what, $secs, $type) = @_;
	return wait_value($node, worker_pids_sql($type),
		sub { $_[0] =~ /^\d+$/ && $_[0] ne $old_pid }, $secs // 30, $what);
}

sub sim_status_hash
{
	my ($node) = @_;
	return $node->query_hash('postgres',
		'SELECT __COLUMNS__ FROM sim_status()',
		qw(running paused session_id servers tick pid worker_state
		  tick_interval_ms max_servers skipped_servers errors last_error));
}

sub sim_tick_now
{
	my ($node) = @_;
	return $node->safe_psql('postgres', 'SELECT tick FROM sim_status()');
}

# Sample $sql every 100 ms for $secs seconds; returns the list of distinct
# outputs seen, in order. Used to show that something does not change.
sub quiet_window
{
	my ($node, $sql, $secs) = @_;
	my $end = time + $secs;
	my @seen;

	while (time < $end)
	{
		my $v = $node->safe_psql('postgres', $sql);
		push @seen, $v if !@seen || $seen[-1] ne $v;
		usleep(100_000);
	}
	return @seen;
}

sub log_offset
{
	my ($node) = @_;
	return -s $node->logfile;
}

sub log_since
{
	my ($node, $offset) = @_;
	return slurp_file($node->logfile, $offset);
}

# The time (seconds, from log_line_prefix's %m) of the first line of log
# text matching re; undef when none does.
sub log_time
{
	my ($log, $re) = @_;

	foreach my $line (split /\n/, $log)
	{
		next unless $line =~ $re;
		return undef
		  unless $line =~ /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d(?:\.\d+)?)/;
		return Time::Local::timegm(0, $5, $4, $3, $2 - 1, $1) + $6;
	}
	return undef;
}

# Log lines that mean something went wrong in a server process.
sub crash_lines
{
	my ($log) = @_;
	return join "\n",
	  grep { /\b(?:ERROR|FATAL|PANIC):|terminated by signal|exited with exit code|server process .* was terminated/ }
	  split /\n/, $log;
}

# SIGKILL a backend, wait for the postmaster's crash-restart and a new
# ticker (four tests, named after $what). Returns the log offset from
# before the crash.
sub crash_restart
{
	my ($node, $what) = @_;
	my $old = worker_pid($node, 'ticker');
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $victim = $bg->query_safe('SELECT pg_backend_pid()');
	my $off = log_offset($node);
	ok(kill('KILL', $victim), "$what: SIGKILL to backend $victim");
	ok(eval { $node->wait_for_log(qr/all server processes terminated; reinitializing/, $off); 1 },
		"$what: the postmaster reinitialises");
	eval { $bg->quit };
	ok(defined wait_new_worker($node, $old, "$what: ticker", 60, 'ticker'), "$what: a new ticker");
	return $off;
}

# The roles and schemas of self-hosted Supabase, as its init scripts and
# migrations leave them, on a cluster whose bootstrap superuser is
# supabase_admin: a non-superuser postgres (CREATEROLE, pg_monitor,
# pg_read_all_data), the API roles reached through authenticator, the
# schema extensions with the default privileges of migration
# 20230224042246_grant_extensions_perms_for_postgres (ALL to postgres WITH
# GRANT OPTION on whatever the superuser creates there), public's (ALL to
# the API roles), and pgTAP in schema tap.
sub supabase_shape
{
	my ($node) = @_;
	$node->safe_psql('postgres', <<'EOS');
CREATE ROLE postgres LOGIN NOSUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS;
GRANT pg_monitor, pg_read_all_data, pg_signal_backend TO postgres;
CREATE ROLE anon NOLOGIN NOINHERIT;
CREATE ROLE authenticated NOLOGIN NOINHERIT;
CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
CREATE ROLE authenticator LOGIN NOINHERIT;
GRANT anon, authenticated, service_role TO authenticator;
GRANT anon, authenticated, service_role TO postgres;
CREATE SCHEMA extensions;
GRANT USAGE ON SCHEMA extensions TO postgres, anon, authenticated, service_role;
GRANT USAGE ON SCHEMA public TO postgres, anon, authenticated, service_role;
GRANT CREATE ON SCHEMA public TO postgres;
GRANT CREATE ON DATABASE postgres TO postgres;
-- 20230224042246_grant_extensions_perms_for_postgres.sql, in effect
GRANT ALL ON ALL TABLES IN SCHEMA extensions TO postgres WITH GRANT OPTION;
GRANT ALL ON ALL ROUTINES IN SCHEMA extensions TO postgres WITH GRANT OPTION;
GRANT ALL ON ALL SEQUENCES IN SCHEMA extensions TO postgres WITH GRANT OPTION;
ALTER DEFAULT PRIVILEGES IN SCHEMA extensions GRANT ALL ON TABLES TO postgres WITH GRANT OPTION;
ALTER DEFAULT PRIVILEGES IN SCHEMA extensions GRANT ALL ON ROUTINES TO postgres WITH GRANT OPTION;
ALTER DEFAULT PRIVILEGES IN SCHEMA extensions GRANT ALL ON SEQUENCES TO postgres WITH GRANT OPTION;
-- public, as the initial schema sets it up for the API roles
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON ROUTINES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON ROUTINES TO anon, authenticated, service_role;
CREATE SCHEMA tap;
CREATE EXTENSION pgtap WITH SCHEMA tap;
GRANT USAGE ON SCHEMA tap TO PUBLIC;
EOS
}

1;
