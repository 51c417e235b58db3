use strata::cached;

#[cached(key = "user:{id}", ttl = "5m")]
async fn user_name(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
