use std::sync::LazyLock;
use strata::{cached, Postcard, TieredCache};

static CACHE: LazyLock<TieredCache<String, Postcard<String>>> =
    LazyLock::new(|| TieredCache::builder().build());

#[cached(cache = CACHE, key = "user:{id}")]
async fn user_name(id: u64) -> Result<String, std::io::Error> {
    Ok(format!("user {id}"))
}

fn main() {}
