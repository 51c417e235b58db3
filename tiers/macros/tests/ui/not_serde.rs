use strata::{cached, Postcard, TieredCache};

#[derive(Clone)]
struct Profile {
    name: String,
}

fn profiles() -> &'static TieredCache<Profile, Postcard<Profile>> {
    unimplemented!()
}

#[cached(cache = profiles(), key = "profile:{id}")]
async fn profile(id: u64) -> Result<Profile, String> {
    Ok(Profile {
        name: format!("user {id}"),
    })
}

fn main() {}
