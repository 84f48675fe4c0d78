-- wrk script: every request asks for a path never asked before, "<prefix><thread>-<counter>",
-- so every request is a cache miss. The prefix comes after "--" on wrk's command line
-- and must be unique per run (the harness puts a random token in it).
local prefix = "/miss/1024/0/"
local counter = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  if args[1] ~= nil then
    prefix = args[1]
  end
  prefix = prefix .. (tid or 0) .. "-"
end

function request()
  counter = counter + 1
  return wrk.format("GET", prefix .. counter)
end
