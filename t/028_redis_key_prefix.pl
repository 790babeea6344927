
# sim_metrics.redis_key_prefix is bounded (128 bytes) by its check hook, so
# every key the mirror builds fits its buffer: a longer prefix is refused
# (ALTER SYSTEM, SET, a reload of the file), and a prefix of exactly the
# maximum works end to end: every key in Redis is that prefix and a kind,
# nothing more, nothing less.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;
use SimRedis;

plan skip_all => 'redis-server is not installed' unless -x '/usr/bin/redis-server';

my $port = redis_port();
my $node = sim_node('prefix', <<"EOC");
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '100ms'
sim_metrics.redis_host = '127.0.0.1'
sim_metrics.redis_port = $port
EOC
sub q1 { return $node->safe_psql('postgres', $_[0]); }

ok(redis_start(), "redis-server on port $port");
q1('CREATE EXTENSION sim_metrics');
ok(wait_until($node, q{SELECT servers, redis_state FROM sim_status()}, '15|connected', 30),
	'15 servers, Redis connected');

# too long: refused everywhere, with the reason
my $long = 'k' x 129;
my ($ret, $out, $err) = $node->psql('postgres',
	"ALTER SYSTEM SET sim_metrics.redis_key_prefix = '$long'");
isnt($ret, 0, 'ALTER SYSTEM with a 129-byte prefix fails');
like($err, qr/invalid value for parameter "sim_metrics.redis_key_prefix"/, '... as an invalid value');
like($err, qr/The prefix is 129 bytes long; at most 128 bytes are allowed/, '... saying why');
like($err, qr/HINT:.*choose a shorter prefix/, '... and what to do');
($ret, $out, $err) = $node->psql('postgres', "SET sim_metrics.redis_key_prefix = '$long'");
isnt($ret, 0, 'SET with a 129-byte prefix fails');

# a too-long prefix in the file: the reload keeps the old one
my $off = log_offset($node);
$node->append_conf('postgresql.conf', "sim_metrics.redis_key_prefix = '$long'\n");
$node->reload;
ok(eval { $node->wait_for_log(qr/invalid value for parameter "sim_metrics.redis_key_prefix"/, $off); 1 },
	'a reload with a 129-byte prefix in the file is refused');
is(q1('SHOW sim_metrics.redis_key_prefix'), 'sim:', 'the prefix stays sim:');

# exactly the maximum: 128 bytes
my $max = ('p' x 127) . ':';
is(length($max), 128, 'a prefix of 128 bytes');
$node->append_conf('postgresql.conf', "sim_metrics.redis_key_prefix = '$max'\n");
$node->reload;
ok(wait_until($node, 'SHOW sim_metrics.redis_key_prefix', $max, 30), 'the 128-byte prefix is taken');
ok(defined rwait(sub { $_[0] eq '15' }, 'the live set', 'SCARD', "${max}servers"),
	'the live set under the new prefix has 15 ids');
ok(defined rwait(sub { $_[0] =~ /^\d+$/ }, 'the mark', 'HGET', "${max}mirror", 'tick'),
	'the mark under the new prefix');

my @ids = split /\n/, q1('SELECT id FROM server_templates WHERE enabled ORDER BY id');
my %want = map { ("${max}server:$_" => 1) } @ids;
ok(defined rwait(sub { scalar(grep { $want{$_} } split /\n/, $_[0]) == 15 }, 'the hashes',
		'KEYS', "${max}server:*"),
	'a hash a server, named prefix + server: + id');
my @keys = split /\n/, rcli('KEYS', "${max}*");
my @odd = grep { !/^\Q$max\E(?:server:[a-z0-9-]+|samples:[a-z0-9-]+|journal:\d+|servers|mirror)$/ } @keys;
is(join(',', @odd), '', 'every key under the new prefix is exactly prefix + kind');
is(join(',', grep { $_ !~ /^\Q$max\E/ && $_ !~ /^sim:/ } split /\n/, rcli('KEYS', '*')), '',
	'no key under any other prefix');
is(rcli('HGET', "${max}server:$ids[0]", 'status') =~ /^(?:online|warning|critical|offline)$/ ? 1 : 0,
	1, 'a hash under the new prefix has its fields');
is(q1(q{SELECT redis_state FROM sim_status()}), 'connected', 'the mirror is connected');

$node->stop;
redis_stop();
done_testing();
