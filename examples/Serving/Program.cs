using Cnn.Examples.Serving;

// dotnet run --project examples/Serving -- --Model plain.zip [--MaxImageBytes 10485760] [--TopK 5] [--urls http://127.0.0.1:5000]
// POST /predict  (body: an image file, PNG/JPEG/...; ?top=K)  → {"predictions":[{"label":"Trouser","probability":0.97},...]}
// GET  /health   → {"status":"ok","classes":10}
var builder = WebApplication.CreateBuilder(args);
var settings = ServingSettings.From(builder.Configuration);
builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = settings.MaxImageBytes);
builder.Services.AddSingleton(settings);
builder.Services.AddSingleton(_ => new ImageClassifier(settings.ModelPath)); // the model is loaded once
var app = builder.Build();
app.Services.GetRequiredService<ImageClassifier>(); // load at start, not on the first request

app.MapGet("/health", (ImageClassifier classifier) => Results.Ok(new Health("ok", classifier.ClassNames.Count)));
app.MapPost("/predict", PredictEndpoint.Handle);
app.Run();
