//! GNS3 HTTP client (to be written).
pub struct Gns3Client;
pub struct Gns3ClientConfig;
