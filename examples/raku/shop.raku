#!/usr/bin/env raku
# The Raku spelling (Sparrow6's DSL) of shop.sparrow beside it: the
# generator turns both into the same shop.service.
use Sparrow6::DSL;

my $env = %*ENV<SHOP_ENV> // "production";

task-run "shop", "systemd", %(
    description => "Shop front end",
    after-service => <redis postgresql>,
    after-target => "network-online",
    env => %( :RACK_ENV($env), :PORT<8080> ),
    start => "/usr/bin/shop --port 8080",
    stop => "/bin/kill -TERM \$MAINPID",
    reload => "/bin/kill -HUP \$MAINPID",
    restart => "on-failure",
    memory-max => 2.GB,
    cpu-weight => 100,
    # Computed while the definition is read: Requires= and After=.
    orchestration => %(
        requires => sub {
            my %flags = task-run "flags", "feature-flags";
            ["postgresql.service", |(%flags<use-redis> ?? ["redis.service"] !! [])]
        },
    ),
    # Run by the hook runner before each start.
    hooks => %(
        pre-start => sub { die "no /etc/shop.conf" unless file-exists("/etc/shop.conf"); True },
    ),
    # Run by systemd-sparrowd while the service runs.
    monitoring => %(
        interval => 60,
        resource-check => sub { %( memory-max => (get-available-memory() * 0.5).Int ) },
        change-threshold => %( memory-max => "100M" ),
    ),
    health-check => %(
        type => "http",
        url => "http://127.0.0.1:8080/health",
        expect => %( status => 200, body => /'ok'/ ),
        interval => 30,
        on-failure => sub { "restart" },
    ),
    # PSI integers are microseconds, as the kernel counts them.
    kernel-monitoring => %(
        psi => %( memory => %( level => "some", threshold => 150000, window => 2000000 ) ),
    ),
    pressure-response => sub ($event) {
        given $event<type> {
            when "memory-pressure" { %( memory-max => 1.GB ) }
            default { %() }
        }
    },
    adaptive-resources => %(
        kernel-signals => True,
        strategy => sub ($signals) { $signals<psi><cpu><avg10> > 50 ?? %( cpu-weight => 50 ) !! %() },
    ),
);
