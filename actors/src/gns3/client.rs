//! GNS3 HTTP client (being written).
pub struct Gns3Client;
pub struct Gns3ClientConfig;
