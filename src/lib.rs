pub use gns3_central_actors as actors;
