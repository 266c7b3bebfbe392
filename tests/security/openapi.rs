//! Each tier serves its own OpenAPI document and an offline Swagger UI.

use super::harness::{plain_client, spawn};

#[tokio::test]
async fn each_tier_serves_its_own_document_and_an_offline_swagger_ui() {
    let cinemo = spawn("all", &[]);
    let client = plain_client();
    for (base, has, lacks) in [
        (cinemo.public(), "/api/customers/{id}", "/api/cache"),
        (cinemo.internal(), "/api/cache/{id}", "/api/customers"),
    ] {
        let doc: serde_json::Value = client
            .get(format!("{base}/api/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .expect("OpenAPI JSON");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().expect("paths");
        assert!(paths.contains_key(has), "{base} documents {has}");
        assert!(
            !paths.contains_key(lacks),
            "{base} does not document {lacks}"
        );
        assert!(paths.contains_key("/api/health/live") && paths.contains_key("/api/version"));

        let page = client.get(format!("{base}/api/docs")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no external assets: {html}"
        );
        for asset in [
            "swagger-ui-bundle.js",
            "swagger-ui.css",
            "swagger-initializer.js",
            "index.css",
        ] {
            assert!(html.contains(&format!("/api/docs/{asset}")));
            let r = client
                .get(format!("{base}/api/docs/{asset}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{asset}");
            assert!(!r.bytes().await.unwrap().is_empty());
        }
    }
}
