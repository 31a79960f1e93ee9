"""The claims' redis scripts. Each runs atomically inside redis: a check and the write that
depends on it (claim unless finished, renew or release only one's own claim) cannot be
interleaved with another worker's, which separate commands could be."""

from __future__ import annotations

# KEYS: claim, done, claim, done, ...; ARGV: worker, lease in ms.
# One answer per source: "=<record>" finished, "+" claimed now by the caller, "-" held by another.
CLAIM = """
local answers = {}
for i = 1, #KEYS, 2 do
  local done = redis.call('GET', KEYS[i + 1])
  if done then
    answers[#answers + 1] = '=' .. done
  elseif redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) then
    answers[#answers + 1] = '+'
  else
    answers[#answers + 1] = '-'
  end
end
return answers
"""

# KEYS: claims; ARGV: worker, lease in ms. One answer per claim: 1 renewed, 0 no longer ours.
RENEW = """
local answers = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    answers[i] = 1
  else
    answers[i] = 0
  end
end
return answers
"""

# KEYS: claim, done, claim, done, ...; ARGV: worker, seconds to keep (0: for good), then one
# record per source. The record is written whoever holds the claim now: it is a true result.
PUBLISH = """
for i = 1, #KEYS, 2 do
  local record = ARGV[2 + (i + 1) / 2]
  if tonumber(ARGV[2]) > 0 then
    redis.call('SET', KEYS[i + 1], record, 'EX', ARGV[2])
  else
    redis.call('SET', KEYS[i + 1], record)
  end
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
  end
end
return #KEYS / 2
"""

# KEYS: claims; ARGV: worker. Gives up claims without a result, so that others take them now.
RELEASE = """
local released = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    released = released + 1
  end
end
return released
"""
