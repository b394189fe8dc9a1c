//! Every configuration default, stated once: the command line (`cli_args.rs`) shows them and
//! the `Default` impls of `ServerConfig` and `HookSettings` use them.

pub const HOST: &str = "127.0.0.1";
pub const PORT: u16 = 8787;
pub const DATA_DIR: &str = ".livestore-sync";
pub const MAX_FRAME_BYTES: usize = 1 << 20;
pub const MAX_QUEUE_BYTES: usize = 16 << 20;
pub const MAX_TOTAL_QUEUE_BYTES: usize = 512 << 20;
pub const MAX_FRAMES_IN_FLIGHT: usize = 64;
pub const HEADER_TIMEOUT_SECS: u64 = 10;
pub const MAX_PENDING_CONNECTIONS: usize = 1024;
pub const AUTH_TIMEOUT_SECS: u64 = 10;
pub const MAX_UNAUTHENTICATED: usize = 256;
pub const SEND_TIMEOUT_SECS: u64 = 30;
pub const MAX_CONNECTIONS: usize = 20_000;
pub const IDLE_TIMEOUT_SECS: u64 = 300;
pub const MAX_PUSH_EVENTS: u32 = 1000;
pub const MAX_OPEN_STORES: usize = 10_000;
pub const IDLE_STORE_CACHE: usize = 256;
pub const HOOK_CPU_MS: u64 = 50;
pub const HOOK_WALL_MS: u64 = 10_000;
pub const HOOK_MEMORY_MIB: usize = 64;
pub const HOOK_MAX_OUTPUT_BYTES: usize = 16 << 10;
pub const HOOK_HTTP_TIMEOUT_MS: u64 = 5_000;
pub const HOOK_AFTER_PUSH_QUEUE: usize = 10_000;
