#[derive(Debug, Clone, PartialEq)] pub struct WriteRequest;
