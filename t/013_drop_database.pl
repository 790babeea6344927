
# The fleet's own database dropped under the workers: a plain DROP DATABASE
# is refused while the writer is connected (as with any connected session),
# DROP DATABASE ... WITH (FORCE) goes through promptly; the ticker (no
# database) is not in the way; a new database with the extension gets a
# fresh fleet, without the old one's buffered samples.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

my $node = sim_node('dropdb', <<'EOC');
sim_metrics.database_name = 'fleet'
sim_metrics.tick_interval = '100ms'
sim_metrics.flush_interval = '1h'
EOC
$node->safe_psql('postgres', 'CREATE DATABASE fleet');
$node->safe_psql('fleet', 'CREATE EXTENSION sim_metrics');
ok(wait_until($node, 'SELECT servers, pending_samples > 0 FROM sim_status()', '15|t', 30, 'fleet'),
	'fleet loaded in database fleet, samples buffered');
my $ticker = worker_pid($node);
like($ticker, qr/^\d+$/, 'the ticker runs');

my $t0 = time;
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE fleet');
isnt($ret, 0, 'a plain DROP DATABASE of the fleet database is refused');
like($err, qr/is being accessed by other users/, 'because the writer is connected');
like($err, qr/There is 1 other session using the database/, 'only the writer (the ticker has no database)');
cmp_ok(time - $t0, '<', 15, 'and it says so promptly');

$t0 = time;
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE fleet WITH (FORCE)');
is("$ret|$err", '0|', 'DROP DATABASE ... WITH (FORCE) goes through');
cmp_ok(time - $t0, '<', 10, sprintf('in %.1f s', time - $t0));
is(worker_pid($node), $ticker, 'the ticker was not in the way');

$node->safe_psql('postgres', 'CREATE DATABASE fleet');
$node->safe_psql('fleet', 'CREATE EXTENSION sim_metrics');
ok(wait_until($node, 'SELECT servers, writer_pid IS NOT NULL FROM sim_status()', '15|t', 30, 'fleet'),
	'a new extension in a new database: the writer connects and loads the fleet');
ok(wait_until($node, 'SELECT tick >= 3 FROM sim_status()', 't', 30, 'fleet'), 'the new fleet ticks');
$node->safe_psql('fleet', 'SELECT sim_stop()');
is($node->safe_psql('fleet', q{SELECT sim_flush() >= 0}), 't', 'flush into the new table');
is($node->safe_psql('fleet', q{SELECT count(*) > 0, count(*) = count(DISTINCT (server_id, tick))
	FROM server_metrics_history}), 't|t',
	'the new table has rows, none of them a tick twice (no samples of the old fleet)');
ok(wait_until($node, 'SELECT errors >= 0, flush_errors FROM sim_status()', 't|0', 10, 'fleet'),
	'no flush errors');
$node->stop;
done_testing();
