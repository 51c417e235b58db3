use std::sync::LazyLock;
use strata::{invalidates, Postcard, TieredCache};

static CACHE: LazyLock<TieredCache<String, Postcard<String>>> =
    LazyLock::new(|| TieredCache::builder().build());

#[invalidates("user:{id}", "team:{team}:*", cache = CACHE)]
async fn rename(id: u64, name: String) -> Result<(), String> {
    let _ = (id, name);
    Ok(())
}

fn main() {}
