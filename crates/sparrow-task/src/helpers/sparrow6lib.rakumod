# Sparrow6's Raku helpers, as systemd-sparrow provides them (when raku exists).
# Loaded with -Msparrow6lib; the paths come from glue.rakumod.
unit module sparrow6lib;
use glue;

my $config;

sub from-json-file(Str $path) { Rakudo::Internals::JSON.from-json($path.IO.slurp) }

sub config() is export { $config //= from-json-file(cache_root_dir() ~ '/config.json') }

sub variables() is export { from-json-file(cache_dir() ~ '/variables.json') // {} }

sub task_var(Str $name) is export { variables(){$name} }

sub set_stdout($line) is export { spurt stdout_file(), "$line\n", :append }

sub ignore_error() is export { say 'ignore_error:' }

sub ignore_task_error() is export { say 'ignore_task_error:' }

sub ignore_task_check_error() is export { say 'ignore_task_check_error:' }

sub run_task(Str $name, %params = %()) is export {
    die "run_task: '$name' is not a task name" if !$name.chars || $name ~~ /\s/;
    say 'task_var_json_begin';
    say Rakudo::Internals::JSON.to-json(%params);
    say 'task_var_json_end';
    say "task: $name";
}

sub update_state(%state) is export {
    spurt cache_root_dir() ~ '/state.json', Rakudo::Internals::JSON.to-json(%state)
}

sub get_state() is export { from-json-file(cache_root_dir() ~ '/state.json') }

sub captures() is export { from-json-file(cache_root_dir() ~ '/captures.json').map(*<data>).Array }

sub capture() is export { captures()[0] }

sub matched() is export { (cache_root_dir() ~ '/matched.txt').IO.lines.Array }

# The capture records in full: data, index and stream-id of each.
sub captures-full() is export { from-json-file(cache_root_dir() ~ '/captures.json').Array }

# Stream id -> the lines each step matched in it (data, captures, index, next).
sub streams() is export { from-json-file(cache_root_dir() ~ '/streams.json') }

# Per stream, in id order: each step's captures.
sub streams_array() is export { from-json-file(cache_root_dir() ~ '/streams-array.json').Array }

# Prints the streams as Sparrow6 does: "stream: N", "\tlayer: L", "\t\tcaptures".
sub dump_streams() is export {
    for streams_array().kv -> $s, @str {
        say "stream: {$s + 1}";
        for @str.kv -> $l, @layer {
            say "\tlayer: {$l + 1}";
            say "\t\t", @layer.join(" ");
        }
    }
}

# Replaces line number $ln (0-based) of file $path with $data (Sparrow6's
# helper for fixing what a check found).
sub replace(Str $path, Int $ln, Str $data) is export {
    my @lines = $path.IO.lines;
    @lines[$ln] = $data;
    spurt $path, @lines.join("\n") ~ "\n";
}
