//! The Redis backend, with the semantics of Spin's Redis key-value store so that a Spin
//! deployment and `serve-app` can share one Redis: one store per Redis database (the store's
//! label is not in the key), `increment` with `INCRBY` (a counter is decimal text), `get_many`
//! with `MGET`, `set_many` with `MSET`. Compare-and-swap is one Lua script — compare the value
//! the guest read with the one held, then write or delete — rather than Spin's WATCH/MULTI/EXEC,
//! because WATCH belongs to a connection and ours are pooled: the script is atomic on the server
//! and costs one round trip.
//!
//! Connections come from an r2d2 pool (one connection per concurrent call, never one per
//! operation). A connection that broke (Redis restarted) is dropped by the pool; a read, `MSET`
//! or `DEL` that failed on one is tried once more on a new connection, since doing it twice does
//! no harm. `INCRBY` and the swap are never repeated: the first may have been applied. When
//! Redis cannot be reached, calls fail within [`CONNECT_WAIT`], and the app answers 503.

use std::time::Duration;

use redis::{Connection, ErrorKind, RedisError, RedisResult, Script};

use super::{Backend, BackendError};

/// How long a call waits for a connection (Redis down: the call fails after this).
const CONNECT_WAIT: Duration = Duration::from_millis(500);
/// How long a command waits for its answer.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections kept at most (calls run at most one per worker thread at a time).
const POOL_SIZE: u32 = 64;

/// KEYS[1]; ARGV[1] "1" if the guest saw a value, ARGV[2] that value, ARGV[3] the new value
/// (empty: delete). 1 if written, 0 if the key no longer holds what the guest saw.
const COMPARE_AND_SWAP: &str = r"
local held = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if held ~= ARGV[2] then return 0 end
elseif held then
  return 0
end
if ARGV[3] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[3]) end
return 1
";

pub struct Redis {
    pool: r2d2::Pool<redis::Client>,
    compare_and_swap: Script,
}

/// Sets the I/O timeouts of each new connection.
#[derive(Debug)]
struct Timeouts;

impl r2d2::CustomizeConnection<Connection, RedisError> for Timeouts {
    fn on_acquire(&self, connection: &mut Connection) -> Result<(), RedisError> {
        connection.set_read_timeout(Some(IO_TIMEOUT))?;
        connection.set_write_timeout(Some(IO_TIMEOUT))
    }
}

/// A call that got no answer (no connection, a connection lost, a timeout): it may have been
/// done.
fn failed(e: impl std::fmt::Display) -> BackendError {
    BackendError::new(format!("redis: {e}"))
}

/// A call's error: refused when Redis answered with an error (the command was not done).
fn call_failed(e: RedisError) -> BackendError {
    match e.kind() {
        ErrorKind::Server(_) | ErrorKind::Extension => BackendError::refused(format!("redis: {e}")),
        _ => failed(e),
    }
}

/// Runs a blocking call on a tokio worker without stalling the other tasks queued on it (as
/// Spin's stores do); as it is elsewhere.
fn blocking<T>(call: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(call),
        _ => call(),
    }
}

impl Redis {
    /// A pool on `url` (`redis://host:port[/db]`). Nothing is connected yet: a Redis that is
    /// down now fails the first calls, not the start.
    pub fn open(url: &str) -> Result<Redis, BackendError> {
        let client =
            redis::Client::open(url).map_err(|e| BackendError::new(format!("{url}: {e}")))?;
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_timeout(CONNECT_WAIT)
            .connection_customizer(Box::new(Timeouts))
            .build_unchecked(client);
        Ok(Redis {
            pool,
            compare_and_swap: Script::new(COMPARE_AND_SWAP),
        })
    }

    fn call<T>(
        &self,
        run: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, BackendError> {
        blocking(|| {
            let mut connection = self.pool.get().map_err(failed)?;
            run(&mut connection).map_err(call_failed)
        })
    }

    /// A call that may be repeated: once more on a new connection if the first one broke.
    fn call_again_if_broken<T>(
        &self,
        run: impl Fn(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, BackendError> {
        blocking(|| {
            let mut connection = self.pool.get().map_err(failed)?;
            match run(&mut connection) {
                Err(e) if e.is_connection_dropped() || e.is_io_error() => {
                    drop(connection);
                    let mut connection = self.pool.get().map_err(failed)?;
                    run(&mut connection).map_err(call_failed)
                }
                outcome => outcome.map_err(call_failed),
            }
        })
    }

    /// Every key, by SCAN (for measurements and tests).
    fn all_keys(&self, pattern: &str) -> Result<Vec<String>, BackendError> {
        self.call(|c| {
            redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .clone()
                .iter::<String>(c)?
                .collect()
        })
    }
}

/// `prefix` as a SCAN pattern matching it literally.
fn glob_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

impl Backend for Redis {
    fn get_many(&self, _: &str, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.call_again_if_broken(|c| redis::cmd("MGET").arg(keys).query(c))
    }

    fn set_many(&self, _: &str, entries: Vec<(String, Vec<u8>)>) -> Result<(), BackendError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.call_again_if_broken(|c| redis::cmd("MSET").arg(&entries).query(c))
    }

    fn delete_many(&self, _: &str, keys: &[String]) -> Result<(), BackendError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.call_again_if_broken(|c| redis::cmd("DEL").arg(keys).query(c))
    }

    /// SCAN's own cursor: keys in no order, each key present throughout listed at least once.
    fn list_keys(
        &self,
        _: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<String>), BackendError> {
        let from: u64 = match cursor {
            None => 0,
            Some(c) => c
                .parse()
                .map_err(|_| BackendError::new(format!("{c:?}: not a cursor of this store")))?,
        };
        let (next, keys): (u64, Vec<String>) = self.call_again_if_broken(|c| {
            redis::cmd("SCAN")
                .arg(from)
                .arg("COUNT")
                .arg(limit)
                .query(c)
        })?;
        Ok((keys, (next != 0).then(|| next.to_string())))
    }

    fn increment(&self, _: &str, key: &str, delta: i64) -> Result<i64, BackendError> {
        self.call(|c| redis::cmd("INCRBY").arg(key).arg(delta).query(c))
    }

    fn compare_and_swap(
        &self,
        _: &str,
        key: &str,
        seen: Option<&[u8]>,
        value: Vec<u8>,
    ) -> Result<bool, BackendError> {
        let written: i64 = self.call(|c| {
            self.compare_and_swap
                .key(key)
                .arg(if seen.is_some() { "1" } else { "0" })
                .arg(seen.unwrap_or_default())
                .arg(value.as_slice())
                .invoke(c)
        })?;
        Ok(written == 1)
    }

    fn values(&self, store: &str, prefix: &str) -> Vec<Vec<u8>> {
        let Ok(mut keys) = self.all_keys(&glob_prefix(prefix)) else {
            return Vec::new();
        };
        keys.sort();
        self.get_many(store, &keys)
            .map(|values| values.into_iter().flatten().collect())
            .unwrap_or_default()
    }

    fn footprint(&self) -> (usize, usize) {
        let Ok(keys) = self.all_keys("*") else {
            return (0, 0);
        };
        let lengths: Vec<usize> = self
            .call(|c| {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.strlen(k);
                }
                pipe.query(c)
            })
            .unwrap_or_default();
        let bytes = keys.iter().map(String::len).sum::<usize>() + lengths.iter().sum::<usize>();
        (keys.len(), bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::glob_prefix;

    #[test]
    fn a_prefix_matches_itself_literally() {
        assert_eq!(glob_prefix("user/"), "user/*");
        assert_eq!(glob_prefix("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
    }
}
