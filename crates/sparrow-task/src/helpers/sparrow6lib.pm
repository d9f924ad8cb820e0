# Sparrow6's Perl helpers, as systemd-sparrow provides them.
# Loaded with -Msparrow6lib; the paths (root_dir, cache_dir, ...) come from glue.pm.
package sparrow6lib;

use strict;
use warnings;
use JSON::PP ();
use glue;

my $json = JSON::PP->new->utf8->canonical->allow_nonref;
my $config;

sub _read {
    my $path = shift;
    open my $fh, '<', $path or die "cannot read $path: $!\n";
    local $/;
    my $text = <$fh>;
    close $fh;
    return $json->decode($text);
}

sub config { $config //= _read(main::cache_root_dir() . '/config.json'); return $config }

sub variables { return _read(main::cache_dir() . '/variables.json') || {} }

sub task_var {
    my $name = shift;
    return variables()->{$name};
}

sub set_stdout {
    my $line = shift;
    open my $fh, '>>', main::stdout_file() or die "set_stdout: $!\n";
    print $fh $line, "\n";
    close $fh;
}

sub ignore_error { print "ignore_error:\n" }
sub ignore_task_error { print "ignore_task_error:\n" }
sub ignore_task_check_error { print "ignore_task_check_error:\n" }

sub run_task {
    my ($name, $params) = @_;
    die "run_task: '$name' is not a task name\n" if !length($name) || $name =~ /\s/;
    print "task_var_json_begin\n", $json->encode($params || {}), "\ntask_var_json_end\n";
    print "task: $name\n";
}

sub update_state {
    my $state = shift;
    open my $fh, '>', main::cache_root_dir() . '/state.json' or die "update_state: $!\n";
    print $fh $json->encode($state);
    close $fh;
}

sub get_state { return _read(main::cache_root_dir() . '/state.json') }

sub captures { return [ map { $_->{data} } @{ _read(main::cache_root_dir() . '/captures.json') } ] }
sub capture { my $c = captures(); return $c->[0] }

sub matched {
    open my $fh, '<', main::cache_root_dir() . '/matched.txt' or die "matched: $!\n";
    my @m = map { chomp; $_ } <$fh>;
    return \@m;
}

# Stream id -> the lines each step matched in it (data, captures, index, next).
sub streams { return _read(main::cache_root_dir() . '/streams.json') }

# Per stream, in id order: each step's captures.
sub streams_array { return _read(main::cache_root_dir() . '/streams-array.json') }

# Prints the streams as Sparrow6 does: "stream: N", "\tlayer: L", "\t\tcaptures".
sub dump_streams {
    my $s = 0;
    for my $str (@{ streams_array() }) {
        $s++;
        print "stream: $s\n";
        my $l = 0;
        for my $layer (@$str) {
            $l++;
            print "\tlayer: $l\n";
            print "\t\t", join(" ", @$layer), "\n";
        }
    }
}

sub import {
    no strict 'refs';
    for my $f (qw(config variables task_var set_stdout ignore_error ignore_task_error
                  ignore_task_check_error run_task
                  update_state get_state captures capture matched streams streams_array dump_streams)) {
        *{"main::$f"} = \&{"sparrow6lib::$f"};
    }
}

1;
