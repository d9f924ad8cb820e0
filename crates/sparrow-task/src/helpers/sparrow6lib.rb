# Sparrow6's Ruby helpers, as systemd-sparrow provides them.
# Loaded with -r sparrow6lib; the paths (root_dir, cache_dir, ...) come from glue.rb.
require 'json'
require 'glue'

def config
  @sparrow_config ||= JSON.parse(File.read("#{cache_root_dir}/config.json"))
end

def task_variables
  JSON.parse(File.read("#{cache_dir}/variables.json")) || {}
end

def task_var(name)
  task_variables[name]
end

def set_stdout(line)
  File.open(stdout_file, 'a') { |f| f.puts line.to_s }
end

def ignore_error(_val = nil)
  puts 'ignore_error:'
end

# The older name of ignore_error.
def ignore_task_error(_val = nil)
  puts 'ignore_task_error:'
end

def ignore_task_check_error
  puts 'ignore_task_check_error:'
end

def run_task(name, params = {})
  raise ArgumentError, "run_task: #{name.inspect} is not a task name" if name.to_s.empty? || name.to_s =~ /\s/
  puts 'task_var_json_begin'
  puts JSON.generate(params || {})
  puts 'task_var_json_end'
  puts "task: #{name}"
  $stdout.flush
end

def update_state(state)
  File.write("#{cache_root_dir}/state.json", JSON.generate(state))
end

def get_state
  JSON.parse(File.read("#{cache_root_dir}/state.json"))
end

def captures
  JSON.parse(File.read("#{cache_root_dir}/captures.json")).map { |c| c['data'] }
end

def capture
  captures.first
end

def matched
  File.readlines("#{cache_root_dir}/matched.txt", chomp: true)
end

# Stream id -> the lines each step matched in it (data, captures, index, next).
def streams
  JSON.parse(File.read("#{cache_root_dir}/streams.json"))
end

# Per stream, in id order: each step's captures.
def streams_array
  JSON.parse(File.read("#{cache_root_dir}/streams-array.json"))
end

[task_dir, root_dir].uniq.each do |d|
  require "#{d}/common.rb" if File.file?("#{d}/common.rb")
end
