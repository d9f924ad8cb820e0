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
# The resident worker's definitions: path -> desc -> the parameter hash.
my %LIVE;
my $CURRENT = '';
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

# Runtime functions. While a definition is read they are errors; in the
# daemon's (or the hook runner's) resident worker, a sub's call asks the
# Rust side to run the native function (`callback` below) and waits.
my $RUNTIME = False;
my $LOADING = False;
sub rt($name, *@args) {
    die "{$name.subst('_', '-', :g)}() is a runtime function: call it inside a hook or monitor sub, not while the definition is read"
        if !$RUNTIME || $LOADING;
    callback($name, @args)
}
sub available-memory() { rt 'available_memory' }
sub free-memory() { rt 'free_memory' }
sub load() { rt 'load' }
sub psi($resource) { rt 'psi', $resource }
sub service-memory($unit) { rt 'service_memory', $unit }
sub service-state($unit) { rt 'service_state', $unit }
sub connections($port) { rt 'connections', $port }
sub http-get($url) { rt 'http_get', $url }
sub read-file($path) { rt 'read_file', $path }
sub read-file-tail($path, $bytes) { rt 'read_file_tail', $path, $bytes }
sub journal($unit, $since) { rt 'journal', $unit, $since }
sub alert($message, $severity = 'warning') { rt 'alert', ~$message, ~$severity }
sub log($message) { rt 'log', ~$message }
sub matches($text, $regex) { rt 'matches', ~$text, $regex ~~ Regex ?? regex-source($regex) !! ~$regex }
# The names the seed's examples use.
sub system-memory() { memory-total() }
sub get-available-memory() { available-memory() }
sub current-load() { load() }
sub get-system-load() { load() }
sub get-active-connections($port) { connections($port) }

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

sub regex-source(Regex $r) {
    my $src = $r.raku;
    $src.starts-with('/') && $src.ends-with('/') ?? $src.substr(1, *-1) !! $src
}

# A sub's place and arity; a regex's source; a size's bytes; the rest as
# JSON. `orchestration.requires` runs now (it computes dependencies).
sub ser($v, @path) {
    given $v {
        when Size { $v.bytes }
        when Regex { %( '$regex' => regex-source($v) ) }
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
    # Inside a sub at runtime: a task, run by our task runner.
    return rt('task_run', ~$desc, ~$plugin, ser(%params, ())) if $RUNTIME && !$LOADING;
    return feature-flags(%params) if $plugin eq 'feature-flags';
    # Loading in the resident worker: the declaration, subs and all.
    if $RUNTIME {
        %LIVE{$CURRENT}{~$desc} = %params;
        return Nil;
    }
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
sub reply($v) {
    $REPLIES.print: to-json($v) ~ "\n";
    $REPLIES.flush;
}
sub failure($e) { %( error => %( message => $e.message.words.join(' '), line => where($e) ) ) }

# A sub asks the Rust side to run a native function and waits for it.
sub callback($name, @args) {
    reply { callback => %( fn => $name, args => [ @args.map({ ser($_, ()) }) ] ) };
    my $line = $*IN.get // die "the daemon went away";
    my %r = from-json($line);
    die %r<error> if %r<error>:exists;
    %r<result>
}

# The sub at `keys` of `desc`'s parameters (hashes, or lists of pairs).
sub find-sub($path, $desc, @keys) {
    my $v = %LIVE{$path}{$desc} // die "$desc is not declared in $path (was it changed since it was loaded?)";
    for @keys -> $k {
        $v = $v ~~ Associative ?? $v{$k}
          !! $v ~~ Positional ?? ($v.first({ $_ ~~ Pair && .key eq $k }) // Pair.new($k, Any)).value
          !! Any;
    }
    die "{@keys.join('.')} of $desc is not a sub" unless $v ~~ Code;
    $v
}

sub translate-definition(%req) {
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
    $reply // failure($!)
}

sub load-definition(%req) {
    $CURRENT = ~%req<path>;
    %LIVE{$CURRENT} = %();
    $LOADING = True;
    LEAVE $LOADING = False;
    my $reply = try {
        my $*OUT = $*ERR;
        EVAL prepare(%req<text>);
        %( ok => True )
    };
    $reply // failure($!)
}

sub call-sub(%req) {
    my $reply = try {
        my $*OUT = $*ERR;
        my &s = find-sub(~%req<path>, ~%req<desc>, @(%req<keys>));
        my $result = s(|@(%req<args> // []));
        %( ok => ser($result, ()) )
    };
    $reply // failure($!)
}

loop {
    my $line = $*IN.get // last;
    my %req = from-json($line);
    if %req<facts>:exists {
        %FACTS = %req<facts>;
        $RUNTIME = so %req<runtime>;
        # Compiled and ready: from here on each request's time is its own.
        reply { ready => True };
        next;
    }
    if %req<load> { reply load-definition(%req<load>) }
    elsif %req<call> { reply call-sub(%req<call>) }
    else { reply translate-definition(%req) }
}
