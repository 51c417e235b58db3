use std::sync::LazyLock;
use strata::{cached, Postcard, TieredCache};

static CACHE: LazyLock<TieredCache<String, Postcard<String>>> =
    LazyLock::new(|| TieredCache::builder().build());

#[cached(cache = CACHE, key = "user:{id}")]
fn user_name(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
