# systemd-sparrow's Raku bridge: the Sparrow6::DSL shim and the request loop.
#
# One process translates many files: it reads one JSON request per line on
# stdin and answers one JSON line each on stdout. The first line sets the
# host's facts; then each {"path", "text"} is evaluated with this file's
# subs in scope (EVAL sees them lexically), and every `task-run` that
# declares a unit is answered as data: values as JSON, sizes as bytes, subs
# by reference (their arity and line), regexes by source. Rust checks and
# renders the declarations with the same rules as native definitions.
use MONKEY-SEE-NO-EVAL;
use MONKEY-TYPING;

# 4.GB, 512.MB: bytes, as in the native language (powers of 1024).
class Size { has Int $.bytes }
augment class Cool {
    method KB { Size.new(bytes => (self * 1024).Int) }
    method MB { Size.new(bytes => (self * 1024 ** 2).Int) }
    method GB { Size.new(bytes => (self * 1024 ** 3).Int) }
    method TB { Size.new(bytes => (self * 1024 ** 4).Int) }
}
.^compose for Int, Num, Rat, Str;

my %FACTS;
my constant $FLAGS = '/etc/systemd/sparrow/flags.json';
# Per file: declarations, files read (for the cache), and whether a
# generation-time sub is running (only read-only plugins then).
my @DECLS;
my @READ;
my @EXISTS;
my $IN-REQUIRES = False;

sub to-json($v) { Rakudo::Internals::JSON.to-json($v, :!pretty, :sorted-keys) }
sub from-json($t) { Rakudo::Internals::JSON.from-json($t) }

# Host facts (generation time, pure reads), as in the native language.
sub os() { %FACTS<os> // '' }
sub os-version() { %FACTS<os_version> // '' }
sub hostname() { %FACTS<hostname> // '' }
sub arch() { %FACTS<arch> // '' }
sub kernel() { %FACTS<kernel> // '' }
sub virtualization() { %FACTS<virtualization> // '' }
sub memory-total() { %FACTS<memory_total> // 0 }
sub cpu-count() { %FACTS<cpu_count> // 1 }
sub env($name, $default = '') { %*ENV{$name} // $default }
sub file-exists($path) { @EXISTS.push: ~$path; $path.IO.e }

# %*ENV while a file is read: which names it looked at (a cached
# translation is used again only while they hold the same values).
class EnvSpy does Associative {
    has %.env;
    has %.seen;
    has Bool $.all is rw = False;
    method AT-KEY($k) { %!seen{$k} = True; %!env{$k} }
    method EXISTS-KEY($k) { %!seen{$k} = True; %!env{$k}:exists }
    method ASSIGN-KEY($k, \v) { %!env{$k} = v }
    method DELETE-KEY($k) { %!env{$k}:delete }
    method keys { $!all = True; %!env.keys }
    method values { $!all = True; %!env.values }
    method pairs { $!all = True; %!env.pairs }
    method kv { $!all = True; %!env.kv }
    method list { $!all = True; %!env.list }
    method elems { $!all = True; %!env.elems }
    method iterator { $!all = True; %!env.iterator }
}

# Reading other files or running programs makes a translation depend on
# what the bridge cannot see: it is not cached.
my $UNTRACKED = False;
sub slurp(|c) { $UNTRACKED = True; CORE::<&slurp>(|c) }
sub lines(|c) { $UNTRACKED = True; CORE::<&lines>(|c) }
sub run(|c) { $UNTRACKED = True; CORE::<&run>(|c) }
sub shell(|c) { $UNTRACKED = True; CORE::<&shell>(|c) }
sub open(|c) { $UNTRACKED = True; CORE::<&open>(|c) }
sub dir(|c) { $UNTRACKED = True; CORE::<&dir>(|c) }
sub parse-size($s) {
    my $m = ~$s ~~ /^ \s* (\d+ [\.\d+]?) \s* (<[KMGT]>?) 'i'? 'B'? \s* $/
        or die "parse-size: {$s.raku} is not a size (write 512M, 2G, 1.5G)";
    my %shift = '' => 0, K => 10, M => 20, G => 30, T => 40;
    Size.new(bytes => ($m[0] * 2 ** %shift{~$m[1]}).Int)
}

# Runtime functions exist so that subs using them compile; they run in the
# daemon's Raku worker, not while translating.
my constant @RUNTIME = <available-memory free-memory load psi service-memory
    service-state connections http-get read-file journal alert matches
    read-file-tail system-memory get-available-memory current-load
    get-system-load get-active-connections>;
sub runtime-only($name) {
    die "{$name}() is a runtime function: call it inside a hook or monitor sub, not while the definition is read";
}
sub available-memory(|) { runtime-only 'available-memory' }
sub free-memory(|) { runtime-only 'free-memory' }
sub load(|) { runtime-only 'load' }
sub psi(|) { runtime-only 'psi' }
sub service-memory(|) { runtime-only 'service-memory' }
sub service-state(|) { runtime-only 'service-state' }
sub connections(|) { runtime-only 'connections' }
sub http-get(|) { runtime-only 'http-get' }
sub read-file(|) { runtime-only 'read-file' }
sub journal(|) { runtime-only 'journal' }
sub alert(|) { runtime-only 'alert' }
sub log(|) { runtime-only 'log' }
sub matches(|) { runtime-only 'matches' }
sub read-file-tail(|) { runtime-only 'read-file-tail' }
sub system-memory(|) { runtime-only 'system-memory' }
sub get-available-memory(|) { runtime-only 'get-available-memory' }
sub current-load(|) { runtime-only 'current-load' }
sub get-system-load(|) { runtime-only 'get-system-load' }
sub get-active-connections(|) { runtime-only 'get-active-connections' }

# The read-only plugin generation time may call: the flags file's object.
sub feature-flags(%params) {
    my $path = %params<file> // $FLAGS;
    @READ.push: ~$path;
    return {} unless $path.IO.e;
    my $v = try from-json($path.IO.slurp);
    die "feature-flags: $path is not valid JSON ($!)" if $!;
    die "feature-flags: $path holds {$v.^name}, not a JSON object" unless $v ~~ Associative;
    $v
}

# A sub's place and arity; a regex's source; a size's bytes; the rest as
# JSON. `orchestration.requires` runs now (it computes dependencies).
sub ser($v, @path) {
    given $v {
        when Size { $v.bytes }
        when Regex {
            my $src = $v.raku;
            $src = $src.substr(1, *-1) if $src.starts-with('/') && $src.ends-with('/');
            %( '$regex' => $src )
        }
        when Code {
            if @path >= 2 && @path[*-1] eq 'requires' && @path[*-2] eq 'orchestration' {
                $IN-REQUIRES = True;
                LEAVE $IN-REQUIRES = False;
                ser($v(), @path)
            } else {
                %( '$sub' => %( arity => $v.arity, line => $v.line ) )
            }
        }
        when Bool { $v.so }
        when Pair { %( ~$v.key => ser($v.value, (|@path, ~$v.key)) ) }
        when Associative {
            my %h;
            for $v.pairs -> $p { %h{~$p.key} = ser($p.value, (|@path, ~$p.key)) }
            %h
        }
        when Positional | Seq | Range {
            my @l = $v.list;
            if @l && all(@l.map(* ~~ Pair)) {
                my %h;
                for @l -> $p { %h{~$p.key} = ser($p.value, (|@path, ~$p.key)) }
                %h
            } else {
                [ @l.map({ ser($_, @path) }) ]
            }
        }
        when Int { $v }
        when Rat | Num { $v.Num }
        when Str { $v }
        when !.defined { Any }
        default { ~$v }
    }
}

sub task-run($desc, $plugin, %params = {}) {
    return feature-flags(%params) if $plugin eq 'feature-flags';
    die "task-run \"$plugin\" inside orchestration.requires: only the read-only feature-flags plugin runs while the definition is read"
        if $IN-REQUIRES;
    @DECLS.push: %(
        desc => ~$desc,
        plugin => ~$plugin,
        params => ser(%params, ()),
        line => callframe(1).line.Int,
    );
    Nil
}

# Where in the file an exception happened: a compile error knows its line;
# a runtime one has it in the backtrace (frames of the EVAL'd text).
sub where($e) {
    if $e ~~ X::Undeclared::Symbols && $e.message ~~ /'used at line' 's'? \s+ (\d+)/ {
        return +$0;
    }
    return $e.line if $e.can('line') && $e.line;
    return $e.panic.line if $e.can('panic') && $e.panic.can('line');
    for $e.backtrace.list -> $f {
        return $f.line if $f.file.starts-with('EVAL_');
    }
    0
}

# `use Sparrow6::DSL;` names this shim: the line is blanked (the same
# length, so that every position stays where it was).
sub prepare(Str $text) {
    $text.subst(/^^ \h* 'use' \h+ 'Sparrow6::DSL' \h* ';'/, { ' ' x .chars }, :g)
}

my %ENV0 = %*ENV;
my $REPLIES = $*OUT;
for $*IN.lines -> $line {
    my %req = from-json($line);
    if %req<facts>:exists {
        %FACTS = %req<facts>;
        # Compiled and ready: from here on each file's time is its own.
        $REPLIES.print: to-json({ ready => True }) ~ "\n";
        $REPLIES.flush;
        next;
    }
    @DECLS = ();
    @READ = ();
    @EXISTS = ();
    $UNTRACKED = False;
    my $text = prepare(%req<text>);
    my $spy = EnvSpy.new(env => %ENV0);
    my $reply = try {
        # What the file prints goes to stderr, not into the replies.
        my $*OUT = $*ERR;
        my %*ENV := $spy;
        EVAL $text;
        %( ok => %(
            decls => @DECLS,
            read => @READ,
            exists => @EXISTS,
            env => ($spy.all ?? ['*'] !! $spy.seen.keys.sort.list),
            untracked => $UNTRACKED,
        ) )
    };
    $reply //= %( error => %( message => $!.message.words.join(' '), line => where($!) ) );
    $REPLIES.print: to-json($reply) ~ "\n";
    $REPLIES.flush;
}
